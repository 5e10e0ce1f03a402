"""Status and metadata answers, built as the official protos and printed as TF Serving prints them.

Both the gRPC services and the REST routes answer with `tensorflow-serving-api`'s messages;
REST prints them as `model_servers/http_rest_api_util.cc` does: the status with protobuf's JSON
printer (every field, enums by name, int64 as strings), the metadata as `model_spec` plus
`{"metadata": {"signature_def": <SignatureDefMap>}}` with proto field names (hence the doubled
`signature_def`).

Examples:
    >>> from tl_app.serve.manager import VersionState
    >>> status_json(status_response([(3, VersionState("AVAILABLE"))]))["model_version_status"][0]["version"]
    '3'
"""
import json

from tl_app.serve.errors import invalid

SIGNATURE_DEF = "signature_def"  # the only metadata field TF Serving answers


def status_response(versions):
    """A `GetModelStatusResponse` for [(version, VersionState)]."""
    from tensorflow_serving.apis import get_model_status_pb2
    from tensorflow.core.protobuf import error_codes_pb2

    response = get_model_status_pb2.GetModelStatusResponse()
    for version, state in versions:
        entry = response.model_version_status.add()
        entry.version = version
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state.state)
        entry.status.SetInParent()  # TF Serving always sets it: {"error_code": "OK", "error_message": ""}
        entry.status.error_code = error_codes_pb2.Code.Value(state.error_code)
        entry.status.error_message = state.error_message
    return response


def status_json(response):
    from google.protobuf import json_format

    return json_format.MessageToDict(response, always_print_fields_with_no_presence=True)


def check_metadata_fields(fields):
    """TF Serving's checks of `GetModelMetadataRequest.metadata_field`."""
    if not fields:
        raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for field in fields:
        if field != SIGNATURE_DEF:
            raise invalid(f"Metadata field {field} is not supported")


def metadata_response(servable):
    """A `GetModelMetadataResponse`: the servable's model spec and its SignatureDefMap (packed in an Any)."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature_def)
    response.metadata[SIGNATURE_DEF].Pack(signature_map)
    return response


def metadata_json(response):
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2

    options = {"always_print_fields_with_no_presence": True, "preserving_proto_field_name": True}
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF].Unpack(signature_map)
    return {
        "model_spec": json_format.MessageToDict(response.model_spec, **options),
        "metadata": {SIGNATURE_DEF: json_format.MessageToDict(signature_map, **options)},
    }


def dumps(payload):
    return json.dumps(payload, indent=1).encode("utf-8")
