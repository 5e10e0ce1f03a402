"""Config of the MLP recipes (on top of the fields every recipe has)."""
from dataclasses import dataclass
from typing import Optional

from tl_app.config import RecipeConfig


@dataclass
class MLPConfig(RecipeConfig):
    hidden_units: int = 128
    tfds_data_dir: Optional[str] = None  # where tfds keeps prepared data; None = its default
