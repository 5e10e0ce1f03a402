"""Built-in recipes; importing this package registers them (see `tl_app.registry`)."""
from tl_app.recipes import images, mlp, text  # noqa: F401
