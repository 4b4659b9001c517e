"""Stand-in for torch_utils.persistence that pickles modules with the upstream layout.

A decorated module pickles as `_reconstruct_persistent_obj(meta)` with
meta = dict(type='class', version=6, module_src=<source of the defining module>,
class_name=<name>, state=<the module's __dict__>). Unpickling through this module
would exec module_src, which is exactly what the loader under test must never do.
"""

import copy
import inspect
import sys

_version = 6
_exec_sources: dict[str, str] = {}


def persistent_class(orig_class):
    name = orig_class.__module__
    module_src = _exec_sources.get(name) or inspect.getsource(sys.modules[name])

    class Decorator(orig_class):
        _orig_module_src = module_src
        _orig_class_name = orig_class.__name__

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args = copy.deepcopy(args)
            self._init_kwargs = copy.deepcopy(kwargs)

        def __reduce__(self):
            fields = list(super().__reduce__())
            fields += [None] * max(3 - len(fields), 0)
            if fields[0] is not _reconstruct_persistent_obj:
                meta = dict(type="class", version=_version, module_src=self._orig_module_src,
                            class_name=self._orig_class_name, state=fields[2])
                fields[0] = _reconstruct_persistent_obj
                fields[1] = (meta,)
                fields[2] = None
            return tuple(fields)

    Decorator.__name__ = orig_class.__name__
    Decorator.__qualname__ = orig_class.__qualname__
    return Decorator


def _reconstruct_persistent_obj(meta):
    name = f"_reconstructed_{len(_exec_sources)}"
    _exec_sources[name] = meta["module_src"]
    module = type(sys)(name)
    exec(meta["module_src"], module.__dict__)  # noqa: S102 - the upstream behaviour the loader must avoid
    cls = persistent_class(module.__dict__[meta["class_name"]])
    obj = cls.__new__(cls)
    obj.__dict__.update(meta["state"])
    return obj
