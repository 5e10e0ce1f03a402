"""TF Serving's JSON tensor format (tl_app.serve.json_tensor): the shapes of answers and requests g3doc/api_rest.md gives."""
import base64
import json

import numpy as np
import pytest

from tl_app.serve.errors import ServingError
from tl_app.serve.json_tensor import parse_predict_request, predict_response


def answer(outputs, row_format):
    return json.loads(predict_response(outputs, row_format))


def test_one_output_is_bare_several_are_objects_in_both_formats():
    scores = np.array([[0.1, 0.9], [0.75, 0.25]], np.float32)
    labels = np.array([b"b", b"a"], dtype=object)
    assert answer({"scores": scores}, True) == {"predictions": [[0.1, 0.9], [0.75, 0.25]]}
    assert answer({"scores": scores}, False) == {"outputs": [[0.1, 0.9], [0.75, 0.25]]}
    assert answer({"scores": scores, "label": labels}, True) == {
        "predictions": [{"label": "b", "scores": [0.1, 0.9]}, {"label": "a", "scores": [0.75, 0.25]}]}
    assert answer({"scores": scores, "label": labels}, False) == {
        "outputs": {"label": ["b", "a"], "scores": [[0.1, 0.9], [0.75, 0.25]]}}


def test_floats_print_in_their_shortest_float32_form_and_bytes_outputs_as_b64():
    body = predict_response({"x": np.array([0.1, 1.0, np.nan, np.inf], np.float32)}, False).decode()
    assert body == '{"outputs": [0.1, 1.0, NaN, Infinity]}'  # TF Serving's tokens for non-finite values
    mixed = predict_response({"x": np.array([np.nan], np.float32), "id": np.array([1])}, True).decode()
    assert mixed == '{"predictions": [{"id": 1, "x": NaN}]}'  # one NaN: the whole body takes the json module's path
    finite = predict_response({"x": np.array([0.1, 1 / 3, 2.0], np.float32), "id": np.array([1, 0, 2])}, False)
    assert finite == b'{"outputs":{"id":[1,0,2],"x":[0.1,0.33333334,2.0]}}'  # orjson's path, the same numbers
    # Requests: NaN, Infinity and numbers over float32's range parse as TF Serving parses them (the json module's path).
    parsed = parse_predict_request(b'{"instances": [[NaN, -Infinity, 1e40, 1]]}', lambda name: {"x": "DT_FLOAT"})
    np.testing.assert_array_equal(parsed.inputs["x"], np.array([[np.nan, -np.inf, np.inf, 1]], np.float32))
    assert answer({"image_bytes": np.array([b"\x89PNG"], dtype=object)}, True) == {
        "predictions": [{"b64": base64.b64encode(b"\x89PNG").decode()}]}
    with pytest.raises(ServingError, match="inconsistent batch size: 1 expecting: 2"):
        predict_response({"a": np.zeros([2]), "b": np.zeros([1])}, True)


def test_requests_in_both_formats_with_several_inputs_and_b64():
    dtypes = {"tag": "DT_STRING", "signal": "DT_FLOAT", "ids": "DT_INT64"}
    row = parse_predict_request(json.dumps({"instances": [
        {"tag": "foo", "signal": [1, 2.5], "ids": [3]},
        {"tag": {"b64": base64.b64encode(b"\x00bar").decode()}, "signal": [3, 4], "ids": [5]}]}).encode(),
        lambda name: dtypes)
    assert row.row_format and row.inputs["tag"].tolist() == [b"foo", b"\x00bar"]
    assert row.inputs["signal"].dtype == np.float32 and row.inputs["signal"].tolist() == [[1, 2.5], [3, 4]]
    assert row.inputs["ids"].dtype == np.int64 and row.inputs["ids"].shape == (2, 1)
    columnar = parse_predict_request(b'{"signature_name": "s", "inputs": {"tag": ["a"], "signal": [[1, 2], [3, 4]],'
                                     b' "ids": 7}}', lambda name: dtypes)
    assert not columnar.row_format and columnar.signature_name == "s"
    assert columnar.inputs["signal"].shape == (2, 2) and columnar.inputs["ids"].shape == ()  # no shared batch needed


@pytest.mark.parametrize("body, fragment", [
    (b'{"instances": [1.5]}', "JSON Value: 1.5 Type: Number is not of expected type: int64"),
    (b'{"instances": [true]}', "JSON Value: true Type: True is not of expected type: int64"),
    (b'{"instances": [9223372036854775808]}', "is not of expected type: int64"),
    (b'{"instances": []}', "No values in 'instances' array"),
    (b'{"instances": {"x": 1}}', "Expecting 'instances' to be an list/array"),
    (b'{"signature_name": 3, "inputs": [1]}', "'signature_name' key must be a string value"),
    (b'[1, 2]', "Is not object"),
    (b'{"inputs": [[1], [2, 3]]}', "Encountered list at unexpected size: 2 at level: 1 expected size: 1"),
    (b'{"inputs": [[1], 2]}', "found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
])
def test_values_that_do_not_fit_the_input_get_tf_servings_messages(body, fragment):
    with pytest.raises(ServingError) as info:
        parse_predict_request(body, lambda name: {"x": "DT_INT64"})
    assert info.value.code == "INVALID_ARGUMENT" and fragment in info.value.message, info.value.message
