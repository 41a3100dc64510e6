#!/usr/bin/env node
// Validates Kubernetes manifests offline against the API schemas.
//
// Why this tool: kubeconform and kubeval are in neither Debian 12 nor npm,
// and kubectl's validation needs an API server. The npm packages
// kubernetes-models (Kubernetes' own OpenAPI schemas), its
// @kubernetes-models/prometheus-operator and @kubernetes-models/keda
// siblings (the CRD schemas of ServiceMonitor, PodMonitor and ScaledObject)
// ship those schemas compiled into ajv validators, so they run with no
// network. Each object is checked twice:
//   1. schema: the package's validator (types, required fields, enums,
//      formats) for its apiVersion/kind;
//   2. strict: no field the schema does not know (what kubeconform -strict
//      adds; the OpenAPI schemas themselves allow unknown fields, which the
//      API server then drops or rejects). The field sets come from the
//      packages' TypeScript declarations.
//
// Usage: node k8s_schema_check.mjs FILE.yaml...
// Exit: 0 all valid, 1 problems, 77 (CTest skip) when the npm packages are
// not installed (npm ci --prefix tests/deploy).

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const kHere = path.dirname(fileURLToPath(import.meta.url));
const kNodeModules = path.join(kHere, "node_modules");
const kSkip = 77;

let YAML;
try {
  YAML = await import("yaml");
  await import("kubernetes-models/v1/ConfigMap");
  await import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor");
  await import("@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject");
} catch (e) {
  console.log(`SKIP: schema packages not installed (${e.code || e.message}); ` +
              "run: npm ci --prefix tests/deploy");
  process.exit(kSkip);
}

// apiVersion -> module folder. Core ("v1") and grouped Kubernetes APIs live
// in kubernetes-models; CRDs in their own packages.
function modulePath(apiVersion, kind) {
  if (!apiVersion || !kind) return null;
  if (apiVersion.startsWith("monitoring.coreos.com/")) {
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  }
  if (apiVersion.startsWith("keda.sh/")) return `@kubernetes-models/keda/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

// --- TypeScript declaration reader (the subset kubernetes-models emits) ----

const kPrimitives = new Set(["string", "number", "boolean", "any", "unknown", "object", "null",
                             "undefined", "true", "false", "never"]);

function tokenize(src) {
  src = src.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, " ");
  const tokens = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_$][\w$]*|\d+(?:\.\d+)?|\S)/gy;
  let m;
  while ((m = re.exec(src)) !== null && m[1] !== undefined) tokens.push(m[1]);
  return tokens;
}

const fileCache = new Map();

// Returns the type a .d.ts file declares (its class members, else its type
// alias, else its interface), as a type node.
function declaredType(file) {
  if (fileCache.has(file)) return fileCache.get(file);
  fileCache.set(file, { k: "any" });  // breaks cycles (e.g. JSONSchemaProps)
  let result = { k: "any" };
  if (fs.existsSync(file)) {
    const t = tokenize(fs.readFileSync(file, "utf8"));
    const ctx = { file, imports: new Map(), t, i: 0 };
    for (let i = 0; i < t.length; i++) {
      if (t[i] === "import" && t[i + 1] === "{") {
        let j = i + 2;
        const names = [];
        while (t[j] !== "}") {
          if (t[j + 1] === "as") { names.push(t[j + 2]); j += 3; } else if (t[j] !== ",") { names.push(t[j]); j++; } else j++;
        }
        const spec = t[j + 2].slice(1, -1);
        for (const n of names) ctx.imports.set(n, spec);
        i = j + 2;
      }
    }
    const at = (words) => {
      for (let i = 0; i + words.length <= t.length; i++) {
        if (words.every((w, k) => w === null || t[i + k] === w)) return i;
      }
      return -1;
    };
    let start = at(["export", "declare", "class"]);
    if (start < 0) start = at(["export", "interface"]);
    const alias = at(["export", "type", null, "="]);
    if (start >= 0) {
      let i = start;
      while (t[i] !== "{") i++;
      ctx.i = i;
      result = parseObjectBody(ctx);
    } else if (alias >= 0) {
      ctx.i = alias + 4;
      result = parseUnion(ctx);
    }
  }
  fileCache.set(file, result);
  return result;
}

function resolveRef(ctx, name) {
  const spec = ctx.imports.get(name);
  if (!spec) return { k: "any" };
  const file = spec.startsWith(".")
    ? path.resolve(path.dirname(ctx.file), spec.replace(/\.js$/, ".d.ts"))
    : path.join(kNodeModules, `${spec}.d.ts`);
  return { k: "ref", file };
}

function skipTo(ctx, stop) {
  let depth = 0;
  while (ctx.i < ctx.t.length) {
    const tok = ctx.t[ctx.i];
    if ("{(<[".includes(tok)) depth++;
    else if ("})>]".includes(tok)) depth--;
    else if (tok === stop && depth === 0) return;
    ctx.i++;
  }
}

// At "{": reads members up to the matching "}".
function parseObjectBody(ctx) {
  const t = ctx.t;
  ctx.i++;  // {
  if (t[ctx.i] === "[") {  // { [key: string]: T; }
    while (t[ctx.i] !== "]") ctx.i++;
    ctx.i += 2;  // ] :
    const of = parseUnion(ctx);
    if (t[ctx.i] === ";") ctx.i++;
    ctx.i++;  // }
    return { k: "map", of };
  }
  const props = new Map();
  while (ctx.i < t.length && t[ctx.i] !== "}") {
    const tok = t[ctx.i];
    if (tok.startsWith('"') || tok.startsWith("'") || (/^[A-Za-z_$]/.test(tok) &&
        (t[ctx.i + 1] === ":" || (t[ctx.i + 1] === "?" && t[ctx.i + 2] === ":")))) {
      const key = tok.startsWith('"') || tok.startsWith("'") ? tok.slice(1, -1) : tok;
      ctx.i++;
      if (t[ctx.i] === "?") ctx.i++;
      ctx.i++;  // :
      props.set(key, parseUnion(ctx));
      if (t[ctx.i] === ";" || t[ctx.i] === ",") ctx.i++;
    } else {  // static ..., constructor(...), readonly, index signatures
      skipTo(ctx, ";");
      ctx.i++;
    }
  }
  ctx.i++;  // }
  return { k: "obj", props };
}

function parseUnion(ctx) {
  const options = [parsePostfix(ctx)];
  while (ctx.t[ctx.i] === "|") {
    ctx.i++;
    options.push(parsePostfix(ctx));
  }
  return options.length === 1 ? options[0] : { k: "union", options };
}

function parsePostfix(ctx) {
  let node = parsePrimary(ctx);
  while (ctx.t[ctx.i] === "[" && ctx.t[ctx.i + 1] === "]") {
    ctx.i += 2;
    node = { k: "array", of: node };
  }
  return node;
}

function parsePrimary(ctx) {
  const t = ctx.t;
  const tok = t[ctx.i];
  if (tok === "|") { ctx.i++; return parsePrimary(ctx); }  // leading |
  if (tok === "(") {
    ctx.i++;
    const inner = parseUnion(ctx);
    ctx.i++;  // )
    return inner;
  }
  if (tok === "{") return parseObjectBody(ctx);
  if (/^["'\d-]/.test(tok)) { ctx.i++; return { k: "any" }; }
  ctx.i++;
  if (t[ctx.i] === "<") {  // generic
    ctx.i++;
    const args = [parseUnion(ctx)];
    while (t[ctx.i] === ",") { ctx.i++; args.push(parseUnion(ctx)); }
    ctx.i++;  // >
    if (tok === "Array") return { k: "array", of: args[0] };
    if (tok === "Record") return { k: "map", of: args[1] };
    return { k: "any" };
  }
  if (kPrimitives.has(tok)) return { k: "any" };
  return resolveRef(ctx, tok);
}

// Returns "path: unknown field" messages for fields the type does not know.
function unknownFields(value, type, where) {
  if (type.k === "ref") return unknownFields(value, declaredType(type.file), where);
  if (value === null || typeof value !== "object") return [];
  switch (type.k) {
    case "array":
      return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, type.of, `${where}[${i}]`)) : [];
    case "map":
      return Array.isArray(value) ? [] : Object.entries(value).flatMap(([k, v]) => unknownFields(v, type.of, `${where}.${k}`));
    case "obj": {
      if (Array.isArray(value)) return [];
      const out = [];
      for (const [k, v] of Object.entries(value)) {
        if (!type.props.has(k)) out.push(`${where}.${k}: unknown field`);
        else out.push(...unknownFields(v, type.props.get(k), `${where}.${k}`));
      }
      return out;
    }
    case "union": {
      let best = null;
      for (const option of type.options) {
        const errs = unknownFields(value, option, where);
        if (best === null || errs.length < best.length) best = errs;
        if (errs.length === 0) break;
      }
      return best || [];
    }
    default:
      return [];
  }
}

// --- main --------------------------------------------------------------------

async function checkObject(obj, label) {
  const mod = modulePath(obj.apiVersion, obj.kind);
  if (mod === null) return [`${label}: apiVersion and kind are required`];
  let Model;
  try {
    Model = (await import(mod))[obj.kind];
  } catch (e) {
    return [`${label}: no schema for ${obj.apiVersion} ${obj.kind}`];
  }
  const problems = [];
  try {
    new Model(obj).validate();
  } catch (e) {
    problems.push(`${label}: ${e.message.replace(/^data/, "")}`);
  }
  const type = declaredType(path.join(kNodeModules, `${mod}.d.ts`));
  for (const p of unknownFields(obj, type, "")) problems.push(`${label}: ${p.replace(/^\./, "")}`);
  return problems;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: k8s_schema_check.mjs FILE.yaml...");
  process.exit(2);
}
let objects = 0;
const problems = [];
for (const file of files) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) {
      problems.push(`${file}: ${doc.errors[0].message}`);
      continue;
    }
    const obj = doc.toJS({ maxAliasCount: 100 });
    if (obj === null || obj === undefined) continue;
    if (obj.kind === "Kustomization") continue;  // not an API object; kubectl kustomize checks it
    objects++;
    const name = (obj.metadata && obj.metadata.name) || "?";
    problems.push(...await checkObject(obj, `${file}: ${obj.kind}/${name}`));
  }
}
for (const p of problems) console.log(p);
console.log(`${objects} objects, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
