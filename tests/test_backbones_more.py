"""The other half of the registered image bases through `test_backbones.check_base` (build, train, export,
answer): a second file, so the two halves run on separate test workers."""
import pytest

from test_backbones import check_base
from tl_app.image.backbones import all_backbones

BASES = sorted(all_backbones())[1::2]


@pytest.mark.parametrize("name", BASES)
def test_every_base_builds_trains_exports_and_its_export_answers_as_the_model(name, tmp_path, feature_store_dir):
    check_base(name, tmp_path)
