"""Conversions between protobuf messages and plain Python values.

message_to_dict() turns any response into dicts, lists and scalars with
their Python types (unlike json_format, 64-bit integers stay ints), enum
values as their short names ("HIGH", "SUCCEEDED", "PEER"), unset optional
and message fields as None, and bytes as bytes.
"""

import re

from google.protobuf import descriptor as _descriptor

from inferd_client import _stubs

_PRIORITY = _stubs.common_pb2.Priority
_TASK_STATE = _stubs.scheduler_pb2.TaskState
_REDUCE_OP = _stubs.communication_pb2.ReduceOp


def _enum_prefix(enum_descriptor):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_descriptor.name).upper() + "_"


def enum_short_name(enum_descriptor, number):
    """"PRIORITY_HIGH" -> "HIGH"; an unknown number stays an int."""
    value = enum_descriptor.values_by_number.get(number)
    if value is None:
        return number
    prefix = _enum_prefix(enum_descriptor)
    return value.name[len(prefix):] if value.name.startswith(prefix) else value.name


def enum_value(enum_descriptor, value, field):
    """Parses an enum given as its short or full name (any case), its
    number, or an object with a `name` (a Python Enum member, e.g. a
    TaskPriority.HIGH). Raises ValueError naming `field`."""
    if isinstance(value, bool):
        raise ValueError("%s: %r is not a %s" % (field, value, enum_descriptor.name))
    if isinstance(value, int):
        if value in enum_descriptor.values_by_number:
            return value
        raise ValueError("%s: %d is not a %s" % (field, value, enum_descriptor.name))
    name = getattr(value, "name", value)
    if isinstance(name, str):
        key = name.strip().upper()
        prefix = _enum_prefix(enum_descriptor)
        for candidate in (key, prefix + key):
            v = enum_descriptor.values_by_name.get(candidate)
            if v is not None:
                return v.number
    names = [enum_short_name(enum_descriptor, v.number) for v in enum_descriptor.values]
    raise ValueError("%s: %r is not one of %s" % (field, value, ", ".join(map(str, names))))


def priority_value(priority, field="priority"):
    """CRITICAL | HIGH | NORMAL | LOW | BACKGROUND (names, numbers 1..5, or
    an Enum member with one of those names); None means NORMAL."""
    if priority is None:
        return _PRIORITY.Value("PRIORITY_NORMAL")
    return enum_value(_PRIORITY.DESCRIPTOR, priority, field)


def task_state_value(state, field="state"):
    if state is None:
        return 0
    return enum_value(_TASK_STATE.DESCRIPTOR, state, field)


def reduce_op_value(op, field="op"):
    return enum_value(_REDUCE_OP.DESCRIPTOR, op, field)


def _is_synthetic_optional(field):
    oneof = field.containing_oneof
    return oneof is not None and len(oneof.fields) == 1 and oneof.name == "_" + field.name


def _scalar(field, value):
    if field.type == _descriptor.FieldDescriptor.TYPE_ENUM:
        return enum_short_name(field.enum_type, value)
    if field.type == _descriptor.FieldDescriptor.TYPE_MESSAGE:
        return message_to_dict(value)
    return value


def message_to_dict(message):
    """Converts a message (recursively) into plain Python values."""
    out = {}
    for field in message.DESCRIPTOR.fields:
        name = field.name
        value = getattr(message, name)
        if field.label == _descriptor.FieldDescriptor.LABEL_REPEATED:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                value_field = field.message_type.fields_by_name["value"]
                out[name] = {k: _scalar(value_field, v) for k, v in value.items()}
            else:
                out[name] = [_scalar(field, v) for v in value]
        elif field.containing_oneof is not None and not _is_synthetic_optional(field):
            if message.WhichOneof(field.containing_oneof.name) == name:
                out[name] = _scalar(field, value)
        elif field.message_type is not None or _is_synthetic_optional(field):
            out[name] = _scalar(field, value) if message.HasField(name) else None
        else:
            out[name] = _scalar(field, value)
    return out
