#!/usr/bin/env bash
# The request-path figures on a GPU machine, from a package of the daemon,
# inferctl and the benchmarks (bin/ and lib/ under $GPU_BUNDLE):
#  1. request_path_bench (and request_path_bench_before, an earlier build,
#     when packaged): server CPU per identity request against a bare
#     echo at 1/32/256 in flight, per-thread CPU, and a batch-1 fp16 mlp
#     (1024->4096->4096->1024, batching on, 200 us delay) at 1 in flight
#     against identity (MODEL_ROUNDS alternating rounds, default 5) and
#     its GPU time (mlp_gpu_bench, when packaged);
#  2. comm_bench: pageable H2D/D2H through the engine against cudaMemcpy
#     from/to pageable memory (copy_threads 1 and 4);
#  3. a compute-heavy mlp (4096->16384->16384->4096 fp32) served from
#     batch-1 requests at 128 and 512 in flight (GPU busy sampled by
#     nvidia-smi) against PyTorch at batch 1024 on the same GPU, from
#     HEAVY_CLIENTS inferctl processes (default 4, one connection each) at
#     HEAVY_LEVELS calls in flight (default "128 512"), for each of the
#     HEAVY_SLOTS variants (slots, executions, preferred batch sizes and
#     delay; see the step) and each of the HEAVY_DAEMONS binaries, beside the model's GPU time per batch size
#     (mlp_gpu_bench, when packaged) and PyTorch's; the daemon's builtin
#     identity fed the same requests, and batch_ceiling_server (a gRPC
#     echo holding calls for a simulated GPU; HEAVY_CEILING variants,
#     "transport" a GPU that takes no time), each with the clients' mean
#     latency, so that the time a call spends outside the GPU is measured.
#  4. (step cpu) where the heavy model's limit is not: identity and the
#     heavy mlp (4 slots, 2 executions) fed the same 16 KB batch-1
#     requests at 512 in flight from CPU_CLIENTS inferctl processes
#     (default "4 16"), with the daemon's cores (/proc/PID/stat) and the
#     host's busy cores (/proc/stat) over each run.
#   bash request_path_suite.sh WORKDIR [STEP...]   (steps: path comm heavy cpu)
set -uo pipefail
work=$1; shift
steps=("$@"); [[ ${#steps[@]} -gt 0 ]] || steps=(path comm heavy)
bin=${GPU_BUNDLE:?source env.sh first}/bin
export CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
mkdir -p "$work"
# CPU ticks (1/100 s) from /proc: the host's busy and idle, and a process's
# user + system time.
host_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat; }
process_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for s in "${steps[@]}"; do
  case $s in
    path)
      "$bin/gen_demo_mlp" --out "$work/repo/mlp" --name mlp --sizes 1024,4096,4096,1024 \
        --activation relu --dtype fp16 --max-batch-size 256 >/dev/null
      # A build of an earlier commit beside this one, when packaged as
      # request_path_bench_before, gives before/after figures from one run.
      for b in request_path_bench_before request_path_bench; do
        [[ -x $bin/$b ]] || continue
        echo "== $b"
        "$bin/$b" --gpu --seconds="${SECONDS_PER_LEVEL:-3}" --repeat="${MODEL_ROUNDS:-5}" \
          --model-repository="$work/repo" --model=mlp --model-input=INPUT0:FP16:1x1024
      done
      # The mlp's GPU time per batch-1 call (CUDA events around queued
      # calls), which the goal adds to identity's p50.
      if [[ -x $bin/mlp_gpu_bench ]]; then
        echo "== mlp_gpu_bench (gpu_us: GPU time per call)"
        "$bin/mlp_gpu_bench" 200 1024,4096,4096,1024 fp16 1
      fi ;;
    cpu)
      repo=$work/cpu
      "$bin/gen_demo_mlp" --out "$repo/mlp_heavy" --name mlp_heavy --sizes 4096,16384,16384,4096 \
        --activation relu --dtype fp32 --max-batch-size 1024 >/dev/null
      printf 'scheduling: {max_executions_per_device: 2}\n' >>"$repo/mlp_heavy/config.yaml"
      "$bin/inferd" --grpc-listen=127.0.0.1:50182 --metrics-listen= --model-repository="$repo" \
        2>"$work/cpu_inferd.log" &
      pid=$!
      for _ in $(seq 100); do "$bin/inferd" healthcheck --grpc-target=127.0.0.1:50182 >/dev/null 2>&1 && break; sleep 0.1; done
      for model in identity mlp_heavy; do
        for clients in ${CPU_CLIENTS:-4 16}; do
          d0=$(process_ticks $pid); read -r b0 i0 < <(host_ticks); s0=$(date +%s.%N)
          rm -f "$work"/cpu.*.json
          pids=()
          for i in $(seq "$clients"); do
            "$bin/inferctl" --target=127.0.0.1:50182 bench $model --input=INPUT0:FP32:1x4096 \
              --concurrency=$((512 / clients)) --warmup=1 --duration=4 --json >"$work/cpu.$i.json" &
            pids+=($!)
          done
          wait "${pids[@]}"
          d1=$(process_ticks $pid); read -r b1 i1 < <(host_ticks); s1=$(date +%s.%N)
          qps=$(cat "$work"/cpu.*.json | grep -o '"qps":[0-9.]*' | cut -d: -f2 | awk '{s+=$1} END {printf "%.0f", s}')
          awk -v m=$model -v c=$clients -v q="$qps" -v d0=$d0 -v d1=$d1 -v b0=$b0 -v b1=$b1 -v s0=$s0 -v s1=$s1 \
            'BEGIN {t = s1 - s0; printf "{\"label\":\"cpu\",\"model\":\"%s\",\"clients\":%d,\"in_flight\":512,\"requests_per_s\":%s,\"daemon_cores\":%.2f,\"host_busy_cores\":%.2f}\n", m, c, q, (d1 - d0) / 100 / t, (b1 - b0) / 100 / t}'
        done
      done
      "$bin/inferctl" --target=127.0.0.1:50182 stats models 2>/dev/null | grep -E "^mlp_heavy|^model"
      kill -TERM $pid; wait $pid ;;
    comm)
      for t in 1 4; do echo "copy_threads=$t"; "$bin/comm_bench" --max_mib=1024 --iters=5 --copy_threads=$t; done ;;
    heavy)
      repo=$work/heavy; sizes=4096,16384,16384,4096
      # Client processes (one connection each) sharing the calls in flight.
      clients=${HEAVY_CLIENTS:-4}
      "$bin/gen_demo_mlp" --out "$repo/mlp_heavy" --name mlp_heavy --sizes $sizes \
        --activation relu --dtype fp32 --max-batch-size 1024 >/dev/null
      # Variants "SLOTS[:EXEC[:PREFERRED[:DELAY_US[:FLAGS]]]]": slots per device
      # (max_tasks_per_device), the model's
      # scheduling.max_executions_per_device (0: none), its
      # dynamic_batching.preferred_batch_sizes ("/"-separated, or "none")
      # and max_queue_delay_us (default 200); FLAGS "w": the daemon's
      # scheduler.batch_dispatch_when_idle off (a lone request waits);
      # "g": scheduler.batch_gather_on_arrival on (both: "wg").
      # EXEC with an "s" ("2s"): scheduling.overlap_executions: false; a
      # number after it ("2s300"): scheduling.next_batch_lead_us.
      # The default: preferred sizes 64/128, the ends of the GEMM's steps
      # (docs/SCHEDULER.md, "Preferred sizes under load"), with two
      # executions side by side against two in order on one stream
      # ("Executions in order on one stream").
      grep -v 'dynamic_batching\|max_queue_delay_us' "$repo/mlp_heavy/config.yaml" >"$work/heavy_config.orig"
      # The GPU time of one forward per batch size: flat between tile
      # boundaries (the steps the preferred sizes follow).
      gpu_ms=""
      if [[ -x $bin/mlp_gpu_bench ]]; then
        "$bin/mlp_gpu_bench" 20 $sizes fp32 1,8,16,32,64,96,128,192,256,1024 | grep -v graph | tee "$work/heavy_gpu.txt"
        # "ROWS:MS,..." for batch_ceiling_server, from the gpu_us column.
        gpu_ms=$(awk '$2 == "eager" {printf "%s%d:%.4f", (n++ ? "," : ""), $3, $6 / 1000}' "$work/heavy_gpu.txt")
      fi
      # Closed-loop clients (HEAVY_CLIENTS processes) on PORT at CONC calls
      # in flight; prints the samples/s they were answered at, summed.
      # Also the host's busy cores over the run (/proc/stat), and the
      # daemon's when its PID is given (/proc/PID/stat).
      heavy_clients() {
        local port=$1 conc=$2 model=${3:-mlp_heavy} server=${4:-} i pids=() b0 i0 b1 i1 d0=0 d1=0 s0 s1
        rm -f "$work"/heavy.$conc.*.json
        read -r b0 i0 < <(host_ticks)
        [[ -n $server ]] && d0=$(process_ticks "$server")
        s0=$(date +%s.%N)
        for i in $(seq "$clients"); do
          "$bin/inferctl" --target=127.0.0.1:$port bench "$model" --input=INPUT0:FP32:1x4096 \
            --concurrency=$((conc / clients)) --warmup=2 --duration="${HEAVY_SECONDS:-6}" --json >"$work/heavy.$conc.$i.json" &
          pids+=($!)
        done
        wait "${pids[@]}"
        s1=$(date +%s.%N)
        read -r b1 i1 < <(host_ticks)
        [[ -n $server ]] && d1=$(process_ticks "$server")
        # "SAMPLES_PER_S MEAN_US HOST_CORES DAEMON_CORES": summed over the
        # clients, their mean latency (the time a call spends away from its
        # client), and the cores busy over the run (warm-up included).
        cat "$work"/heavy.$conc.*.json | grep -o '"qps":[0-9.]*\|"mean_us":[0-9.]*' | cut -d: -f2 | paste - - |
          awk -v t="$(awk -v a="$s0" -v b="$s1" 'BEGIN {print b - a}')" -v h=$((b1 - b0)) -v d=$((d1 - d0)) \
            '{s+=$1; m+=$2; n++} END {printf "%.1f %.0f %.2f %.2f", s, m/n, h/100/t, d/100/t}'
      }
      # HEAVY_DAEMONS: daemon binaries under bin/ to run each variant with
      # (default inferd; e.g. "inferd inferd_before" for a before/after).
      for variant in ${HEAVY_SLOTS:-4:2:64/128 4:2s:64/128}; do
       for daemon in ${HEAVY_DAEMONS:-inferd}; do
        IFS=: read -r slots exec_limit preferred delay_us idle <<<"$variant"
        exec_limit=${exec_limit:-0}; preferred=${preferred:-none}; delay_us=${delay_us:-200}
        idle_dispatch=true; [[ ${idle:-} == *w* ]] && idle_dispatch=false
        arrival=false; [[ ${idle:-} == *g* ]] && arrival=true
        # EXEC with an "s" ("2s"): the executions run one after another on
        # one stream (scheduling.overlap_executions: false); "2s300": and
        # the next batch is released 300 us before the running one's
        # predicted end (scheduling.next_batch_lead_us; default 100).
        overlap=true; lead_us=""
        if [[ $exec_limit == *s* ]]; then
          overlap=false; lead_us=${exec_limit#*s}; exec_limit=${exec_limit%%s*}
        fi
        cp "$work/heavy_config.orig" "$repo/mlp_heavy/config.yaml"
        if [[ $overlap == true ]]; then
          printf 'scheduling: {max_executions_per_device: %d}\n' "$exec_limit" >>"$repo/mlp_heavy/config.yaml"
        else
          printf 'scheduling: {max_executions_per_device: %d, overlap_executions: false%s}\n' \
            "$exec_limit" "${lead_us:+, next_batch_lead_us: $lead_us}" >>"$repo/mlp_heavy/config.yaml"
        fi
        if [[ $preferred == none ]]; then
          printf 'dynamic_batching: {max_queue_delay_us: %d}\n' "$delay_us" >>"$repo/mlp_heavy/config.yaml"
        else
          printf 'dynamic_batching: {max_queue_delay_us: %d, preferred_batch_sizes: [%s]}\n' \
            "$delay_us" "${preferred//\//,}" >>"$repo/mlp_heavy/config.yaml"
        fi
        "$bin/inferd" --print-config | sed "s/max_tasks_per_device: [0-9]*/max_tasks_per_device: $slots/;
          s/batch_dispatch_when_idle: [a-z]*/batch_dispatch_when_idle: $idle_dispatch/;
          s/batch_gather_on_arrival: [a-z]*/batch_gather_on_arrival: $arrival/" >"$work/heavy_$slots.yaml"
        "$bin/$daemon" --config="$work/heavy_$slots.yaml" --grpc-listen=127.0.0.1:50181 --metrics-listen=127.0.0.1:50184 \
          --model-repository="$repo" 2>"$work/heavy_${daemon}_${variant//[^0-9a-z]/_}.log" &
        pid=$!
        for _ in $(seq 100); do "$bin/inferd" healthcheck --grpc-target=127.0.0.1:50181 >/dev/null 2>&1 && break; sleep 0.1; done
        # Once, the daemon's builtin identity fed the same requests: its
        # front end's time per call with no model behind it (mean_us).
        if [[ -z ${identity_done:-} ]]; then
          identity_done=1
          for conc in ${HEAVY_LEVELS:-128 512}; do
            read -r qps mean_us host_cores daemon_cores <<<"$(heavy_clients 50181 "$conc" identity $pid)"
            echo "{\"label\":\"heavy_identity\",\"in_flight\":$conc,\"requests_per_s\":$qps,\"mean_us\":$mean_us,\"host_busy_cores\":$host_cores,\"daemon_cores\":$daemon_cores}"
          done
        fi
        for conc in ${HEAVY_LEVELS:-128 512}; do
          nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -i 0 -lms 100 >"$work/util.$conc" &
          smi=$!
          read -r qps mean_us host_cores daemon_cores <<<"$(heavy_clients 50181 "$conc" mlp_heavy $pid)"
          kill $smi
          awk -v q="$qps" -v m="$mean_us" -v c="$conc" -v n="$slots" -v e="$exec_limit" -v o="$overlap" -v p="$preferred" -v d="$daemon" -v w="$delay_us" -v i="$idle_dispatch" -v g="$arrival" -v l="${lead_us:-100}" -v hc="$host_cores" -v dc="$daemon_cores" 'NR>20 {t+=$1; k++} END {printf "{\"label\":\"heavy_served\",\"daemon\":\"%s\",\"slots\":%d,\"max_executions\":%d,\"overlap\":%s,\"preferred\":\"%s\",\"delay_us\":%d,\"dispatch_when_idle\":%s,\"gather_on_arrival\":%s,\"lead_us\":%s,\"in_flight\":%d,\"samples_per_s\":%s,\"mean_us\":%s,\"gpu_busy\":%.3f,\"host_busy_cores\":%s,\"daemon_cores\":%s}\n", d, n, e, o, p, w, i, g, l, c, q, m, t/k/100, hc, dc}' "$work/util.$conc"
          # The batch sizes the run formed (inferd_scheduler_batch_size),
          # cumulative: "rows<=LE:BATCHES".
          curl -s "127.0.0.1:50184/metrics" | grep '^inferd_scheduler_batch_size_bucket.*mlp_heavy' |
            sed 's/.*le="\([^"]*\)"} */\1:/' | tr '\n' ' ' | sed 's/^/batch_rows_cumulative /; s/ $/\n/'
        done
        "$bin/inferctl" --target=127.0.0.1:50181 stats models 2>/dev/null | grep -E "^mlp_heavy|^model"
        kill -TERM $pid; wait $pid
       done
      done
      # The ceiling the front end leaves: the same clients against a gRPC
      # echo that holds each call for a simulated GPU running the batches
      # it forms with the GPU times above (batch_ceiling_server). Variants
      # "EXECUTIONS:MIN_ROWS:MAX_ROWS[:DELAY_US]" (a batch below MIN_ROWS
      # waits up to DELAY_US, default 200, for more).
      # A variant "transport" is the same echo with a GPU that takes no
      # time: what the clients and gRPC alone answer at each level, and
      # the time a call spends away from its client with nothing to wait
      # for (mean_us), which no batching server can go below.
      if [[ -x $bin/batch_ceiling_server && -n $gpu_ms && ${HEAVY_CEILING:-} != none ]]; then
        echo "== batch_ceiling_server --gpu-ms=$gpu_ms"
        for variant in ${HEAVY_CEILING:-transport 2:1:128 2:64:128 1:1:128 2:1:1024}; do
          ms=$gpu_ms; label=heavy_ceiling
          [[ $variant == transport ]] && { variant=2:1:1024; ms=1:0; label=heavy_transport; }
          IFS=: read -r exec_limit min_rows max_rows delay_us <<<"$variant"; delay_us=${delay_us:-200}
          for conc in ${HEAVY_LEVELS:-128 512}; do
            "$bin/batch_ceiling_server" --listen=127.0.0.1:50183 --gpu-ms="$ms" --executions="$exec_limit" \
              --min-rows="$min_rows" --max-rows="$max_rows" --delay-us="$delay_us" >"$work/ceiling.out" &
            pid=$!
            for _ in $(seq 100); do "$bin/inferd" healthcheck --grpc-target=127.0.0.1:50183 >/dev/null 2>&1 && break; sleep 0.1; done
            read -r qps mean_us host_cores _ <<<"$(heavy_clients 50183 "$conc")"
            kill -TERM $pid; wait $pid
            sed "s/^{\"label\":\"heavy_ceiling\"/{\"label\":\"$label\",\"executions\":$exec_limit,\"delay_us\":$delay_us,\"min_rows\":$min_rows,\"max_rows\":$max_rows,\"in_flight\":$conc,\"samples_per_s\":$qps,\"mean_us\":$mean_us,\"host_busy_cores\":$host_cores/" "$work/ceiling.out"
          done
        done
      fi
      python3 - <<'PY'
import json, time, torch
from torch import nn
sz = [4096, 16384, 16384, 4096]
m = nn.Sequential(nn.Linear(sz[0], sz[1]), nn.ReLU(), nn.Linear(sz[1], sz[2]), nn.ReLU(),
                  nn.Linear(sz[2], sz[3])).cuda().eval()
with torch.no_grad():
    for b in (1024, 512, 128, 64):
        x = torch.randn(b, sz[0], device="cuda")
        for _ in range(10): m(x)
        torch.cuda.synchronize(); n = 50; t = time.perf_counter()
        for _ in range(n): m(x)
        torch.cuda.synchronize()
        print(json.dumps({"label": "pytorch_batch", "batch": b, "samples_per_s": round(n * b / (time.perf_counter() - t), 1)}))
PY
      ;;
    *) echo "unknown step $s" >&2 ;;
  esac
done
