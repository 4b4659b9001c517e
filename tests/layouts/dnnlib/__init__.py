from dnnlib.util import EasyDict  # noqa: F401
