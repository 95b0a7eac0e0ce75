"""The ctypes prototypes and constants must match include/disrnn.h exactly."""
import os
import re
import sys
import unittest
from ctypes import POINTER, c_char, c_char_p, c_double, c_int, c_int64, c_size_t, c_uint8, c_uint64, c_void_p

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from disrnn import _lib  # noqa: E402

HEADER = os.path.normpath(os.path.join(HERE, "..", "..", "..", "include", "disrnn.h"))


def code_only(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    return re.sub(r"\s+", " ", " ".join(lines))


def parse(text):
    code = code_only(text)
    funcs = {}
    for m in re.finditer(r"DISRNN_API ([^;()]*?)\b(disrnn_\w+) ?\(([^)]*)\) ?;", code):
        params = m.group(3).strip()
        args = [] if params in ("", "void") else [re.match(r"^(.*?)\w+$", p.strip()).group(1).strip()
                                                for p in params.split(",")]
        funcs[m.group(2)] = (m.group(1).strip(), args)
    enums = {}
    for m in re.finditer(r"enum disrnn_\w+ ?\{([^}]*)\}", code):
        for item in m.group(1).split(","):
            if "=" in item:
                name, value = [s.strip() for s in item.split("=")]
                enums[name] = int(value)
    return funcs, enums


CALLBACKS = {"disrnn_alloc_fn": _lib.ALLOC_FN, "disrnn_free_fn": _lib.FREE_FN,
             "disrnn_log_fn": _lib.LOG_FN, "disrnn_progress_fn": _lib.PROGRESS_FN}
SCALARS = {"int": c_int, "size_t": c_size_t, "int64_t": c_int64, "uint64_t": c_uint64,
           "double": c_double, "uint8_t": c_uint8, "char": c_char}


def expected_ctype(ctype):
    t = ctype.replace("*", " * ").split()
    stars = t.count("*")
    base = [x for x in t if x not in ("*", "const")]
    assert len(base) == 1, ctype
    base = base[0]
    if stars == 0:
        if base == "void":
            return None
        if base in CALLBACKS:
            return CALLBACKS[base]
        return SCALARS[base]
    if base.endswith("_t") and base.startswith("disrnn_"):
        return c_void_p if stars == 1 else POINTER(c_void_p)
    if base == "void":
        return c_void_p
    if base == "char":
        # Strings in (and static strings out) are c_char_p; writable message buffers are char *.
        return c_char_p if "const" in t else POINTER(c_char)
    assert stars == 1, ctype
    return POINTER(SCALARS[base])


@unittest.skipUnless(os.path.exists(HEADER), "include/disrnn.h not found (bindings used outside the repository)")
class HeaderSync(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(HEADER) as f:
            cls.funcs, cls.enums = parse(f.read())

    def test_every_function_is_declared(self):
        self.assertGreater(len(self.funcs), 90)
        self.assertEqual(sorted(self.funcs), sorted(_lib.PROTOTYPES))

    def test_signatures_match(self):
        for name, (ret, args) in self.funcs.items():
            res, argtypes = _lib.PROTOTYPES[name]
            with self.subTest(function=name):
                self.assertEqual(res, expected_ctype(ret), "return type of %s" % name)
                self.assertEqual(len(argtypes), len(args), "argument count of %s" % name)
                for i, (have, c) in enumerate(zip(argtypes, args)):
                    self.assertEqual(have, expected_ctype(c), "argument %d (%s) of %s" % (i, c, name))

    def test_constants_match(self):
        self.assertGreater(len(self.enums), 100)
        for name, value in self.enums.items():
            short = name[len("DISRNN_"):]
            with self.subTest(constant=name):
                self.assertTrue(hasattr(_lib, short), "%s missing from _lib" % name)
                self.assertEqual(getattr(_lib, short), value)

    def test_version_macros(self):
        with open(HEADER) as f:
            text = f.read()
        for part in ("MAJOR", "MINOR", "PATCH"):
            m = re.search(r"#define DISRNN_VERSION_%s (\d+)" % part, text)
            self.assertEqual(int(m.group(1)), getattr(_lib, "VERSION_" + part))
        m = re.search(r"#define DISRNN_NPY_MAX_DIMS (\d+)", text)
        self.assertEqual(int(m.group(1)), _lib.NPY_MAX_DIMS)


if __name__ == "__main__":
    unittest.main()
