"""Stand-in for dnnlib.util.EasyDict: a dict with attribute access, pickled like the original."""


class EasyDict(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)

    def __setattr__(self, name, value):
        self[name] = value
