#!/usr/bin/env python3
"""Check docs/julia.md against include/disrnn.h.

Julia cannot run here, so the guide's calls are checked statically: every `@ccall` (and
`ccall((:name, lib), ...)`) in a ```julia block must name a function the header declares, with
the same number of arguments and Julia types that are the ABI equivalents of the C ones
(int -> Cint, size_t -> Csize_t, int64_t -> Int64, uint64_t -> UInt64, double -> Cdouble/Float64,
pointers -> Ptr{T} or Ref{T}, handles -> Ptr{Cvoid}, handle out-parameters -> Ref{Ptr{Cvoid}},
callbacks -> Ptr{Cvoid}, strings -> Cstring). Every `@cfunction` must match one of the header's
callback types, and every `const DISRNN_* = ...` must have the header's value.

    python3 tests/check_julia_doc.py [docs/julia.md] [include/disrnn.h]
Exits 1 on any mismatch.
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# ---------------------------------------------------------------------------------------------
# Header


def code_only(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    return re.sub(r"\s+", " ", " ".join(lines))


def parse_params(plist):
    plist = plist.strip()
    if plist in ("", "void"):
        return []
    out = []
    for p in plist.split(","):
        m = re.match(r"^(.*?)(\w+)$", p.strip())
        out.append(m.group(1).strip())
    return out


def parse_header(text):
    code = code_only(text)
    funcs = {}
    for m in re.finditer(r"DISRNN_API ([^;()]*?)\b(disrnn_\w+) ?\(([^)]*)\) ?;", code):
        funcs[m.group(2)] = (m.group(1).strip(), parse_params(m.group(3)))
    callbacks = {}
    for m in re.finditer(r"typedef ([^;()]*?)\(\s*\*\s*(disrnn_\w+)\s*\)\s*\(([^)]*)\)\s*;", code):
        callbacks[m.group(2)] = (m.group(1).strip(), parse_params(m.group(3)))
    handles = set(re.findall(r"typedef struct \w+ (disrnn_\w+_t) ?;", code))
    values = {}
    for m in re.finditer(r"enum disrnn_\w+ ?\{([^}]*)\}", code):
        for item in m.group(1).split(","):
            if "=" in item:
                name, value = [s.strip() for s in item.split("=")]
                values[name] = int(value)
    for m in re.finditer(r"^#define (DISRNN_\w+) (\d+)\s*$", text, flags=re.M):
        values[m.group(1)] = int(m.group(2))
    if all(k in values for k in ("DISRNN_VERSION_MAJOR", "DISRNN_VERSION_MINOR", "DISRNN_VERSION_PATCH")):
        values["DISRNN_VERSION_NUMBER"] = (values["DISRNN_VERSION_MAJOR"] * 10000
                                           + values["DISRNN_VERSION_MINOR"] * 100
                                           + values["DISRNN_VERSION_PATCH"])
    return funcs, callbacks, handles, values


SCALARS = {
    "int": {"Cint", "Int32"},
    "size_t": {"Csize_t"},
    "int64_t": {"Int64", "Clonglong"},
    "uint64_t": {"UInt64", "Culonglong"},
    "double": {"Cdouble", "Float64"},
    "uint8_t": {"UInt8", "Cuchar"},
    "char": {"Cchar", "UInt8", "Int8"},
}


def allowed_julia(ctype, callbacks, handles, is_return=False):
    """The Julia spellings that pass a value of this C type correctly."""
    toks = ctype.replace("*", " * ").split()
    stars = toks.count("*")
    const = "const" in toks
    base = [t for t in toks if t not in ("*", "const")]
    assert len(base) == 1, ctype
    base = base[0]
    if stars == 0:
        if base == "void":
            return {"Cvoid", "Nothing"}
        if base in callbacks:
            return {"Ptr{Cvoid}"}
        return SCALARS[base]
    if base in handles:
        if stars == 1:
            return {"Ptr{Cvoid}"}
        return {"Ref{Ptr{Cvoid}}", "Ptr{Ptr{Cvoid}}"}
    if stars != 1:
        raise ValueError("unsupported C type %r" % ctype)
    if base == "void":
        return {"Ptr{Cvoid}"}
    if base == "char":
        ptrs = {"Ptr{UInt8}", "Ptr{Cchar}"}
        # Strings in and static strings out; a writable message buffer is a byte pointer.
        return ptrs | {"Cstring"} if (const or is_return) else ptrs
    out = set()
    for j in SCALARS[base]:
        out |= {"Ptr{%s}" % j, "Ref{%s}" % j}
    return out


# ---------------------------------------------------------------------------------------------
# Julia source


def julia_blocks(md):
    return re.findall(r"```julia\n(.*?)```", md, flags=re.S)


def strip_julia_comments(code):
    out = []
    for line in code.splitlines():
        # '#' outside a string starts a comment (the guide has no '#' inside strings).
        in_str = False
        for i, ch in enumerate(line):
            if ch == '"':
                in_str = not in_str
            elif ch == "#" and not in_str:
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


OPEN = {"(": ")", "{": "}", "[": "]"}


def balanced(s, i):
    """s[i] is an opening bracket; return the index just after its match."""
    stack = []
    in_str = False
    j = i
    while j < len(s):
        ch = s[j]
        if in_str:
            if ch == "\\":
                j += 1
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in OPEN:
            stack.append(OPEN[ch])
        elif ch in ")}]":
            if not stack or stack.pop() != ch:
                raise ValueError("unbalanced brackets near %r" % s[i:j + 1][-60:])
            if not stack:
                return j + 1
        j += 1
    raise ValueError("unterminated bracket near %r" % s[i:i + 60])


def split_top(s, sep=","):
    parts, depth, cur, in_str, i = [], 0, [], False, 0
    while i < len(s):
        ch = s[i]
        if in_str:
            cur.append(ch)
            if ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
            cur.append(ch)
        elif ch in OPEN:
            depth += 1
            cur.append(ch)
        elif ch in ")}]":
            depth -= 1
            cur.append(ch)
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    if "".join(cur).strip():
        parts.append("".join(cur))
    return [p.strip() for p in parts]


def type_after(s, i):
    """A Julia type starting at s[i] (identifier with optional {...}); returns (type, end)."""
    m = re.match(r"\s*([A-Za-z_][\w.]*)", s[i:])
    if not m:
        raise ValueError("no type near %r" % s[i:i + 40])
    j = i + m.end()
    t = m.group(1)
    if j < len(s) and s[j] == "{":
        k = balanced(s, j)
        t += s[j:k]
        j = k
    return re.sub(r"\s+", "", t), j


def last_top_level_annotation(arg):
    """'expr::Type' -> Type (the last '::' outside brackets)."""
    depth, pos = 0, -1
    for i, ch in enumerate(arg):
        if ch in OPEN:
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif depth == 0 and arg.startswith("::", i):
            pos = i
    if pos < 0:
        return None
    return re.sub(r"\s+", "", arg[pos + 2:])


def find_ccalls(code):
    """Yield (name, [arg types], return type, snippet) for @ccall and ccall forms."""
    for m in re.finditer(r"@ccall\b", code):
        i = m.end()
        while i < len(code) and code[i] in " \t":
            i += 1
        if i < len(code) and code[i] == "(":
            i += 1
        c = re.match(r"\s*(?:\$?[\w]+\.)?(\w+)\s*\(", code[i:])
        if not c:
            raise ValueError("cannot read @ccall near %r" % code[m.start():m.start() + 80])
        name = c.group(1)
        open_at = i + c.end() - 1
        close = balanced(code, open_at)
        args = split_top(code[open_at + 1:close - 1])
        if not code.startswith("::", close):
            raise ValueError("@ccall %s without a return type" % name)
        ret, _ = type_after(code, close + 2)
        types = [last_top_level_annotation(a) for a in args]
        yield name, types, ret, code[m.start():close + 2 + len(ret)]
    for m in re.finditer(r"\bccall\s*\(", code):
        if code[max(0, m.start() - 1)] == "@":
            continue
        close = balanced(code, m.end() - 1)
        parts = split_top(code[m.end():close - 1])
        fm = re.match(r"\(\s*:(\w+)\s*,", parts[0])
        if not fm:
            raise ValueError("ccall without (:name, lib) near %r" % code[m.start():m.start() + 80])
        ret = re.sub(r"\s+", "", parts[1])
        tup = parts[2].strip()
        types = [re.sub(r"\s+", "", t) for t in split_top(tup[1:-1])] if tup.startswith("(") else [tup]
        yield fm.group(1), types, ret, code[m.start():close]


def find_cfunctions(code):
    for m in re.finditer(r"@cfunction\s*\(", code):
        close = balanced(code, m.end() - 1)
        parts = split_top(code[m.end():close - 1])
        ret = re.sub(r"\s+", "", parts[1])
        tup = parts[2].strip()
        types = [re.sub(r"\s+", "", t) for t in split_top(tup[1:-1])]
        yield parts[0], types, ret


def main(argv):
    doc = argv[1] if len(argv) > 1 else os.path.join(ROOT, "docs", "julia.md")
    header = argv[2] if len(argv) > 2 else os.path.join(ROOT, "include", "disrnn.h")
    with open(header) as f:
        funcs, callbacks, handles, values = parse_header(f.read())
    with open(doc) as f:
        md = f.read()
    code = "\n".join(strip_julia_comments(b) for b in julia_blocks(md))
    errors = []
    n_calls, used = 0, set()
    try:
        calls = list(find_ccalls(code))
        cfuncs = list(find_cfunctions(code))
    except ValueError as e:
        print("check_julia_doc: cannot parse %s: %s" % (doc, e))
        return 1
    for name, types, ret, snippet in calls:
        n_calls += 1
        used.add(name)
        if name not in funcs:
            errors.append("%s: not declared in the header" % name)
            continue
        cret, cargs = funcs[name]
        if len(types) != len(cargs):
            errors.append("%s: %d arguments, the header has %d" % (name, len(types), len(cargs)))
            continue
        if ret not in allowed_julia(cret, callbacks, handles, is_return=True):
            errors.append("%s: returns %s, C returns '%s' (expected one of %s)"
                          % (name, ret, cret, sorted(allowed_julia(cret, callbacks, handles, True))))
        for k, (jt, ct) in enumerate(zip(types, cargs)):
            if jt is None:
                errors.append("%s: argument %d has no ::Type annotation" % (name, k + 1))
            elif jt not in allowed_julia(ct, callbacks, handles):
                errors.append("%s: argument %d is %s, C has '%s' (expected one of %s)"
                              % (name, k + 1, jt, ct, sorted(allowed_julia(ct, callbacks, handles))))
    n_cf = 0
    for fname, types, ret in cfuncs:
        n_cf += 1
        ok = False
        for cb, (cret, cargs) in callbacks.items():
            if len(cargs) == len(types) and ret in allowed_julia(cret, callbacks, handles, True) and all(
                    jt in allowed_julia(ct, callbacks, handles) for jt, ct in zip(types, cargs)):
                ok = True
                print("  @cfunction(%s) matches %s" % (fname, cb))
                break
        if not ok:
            errors.append("@cfunction(%s, %s, (%s)) matches no callback type of the header"
                          % (fname, ret, ", ".join(types)))
    n_const = 0
    for m in re.finditer(r"^\s*const (DISRNN_\w+)\s*=\s*(?:Cint\()?\s*(-?\d+)\s*\)?", code, flags=re.M):
        n_const += 1
        name, v = m.group(1), int(m.group(2))
        if name not in values:
            errors.append("const %s: no such constant in the header" % name)
        elif values[name] != v:
            errors.append("const %s = %d, the header says %d" % (name, v, values[name]))
    if n_calls == 0:
        errors.append("no @ccall found in %s" % doc)
    print("check_julia_doc: %s: %d calls of %d distinct functions, %d @cfunction, %d constants checked"
          % (os.path.relpath(doc, ROOT), n_calls, len(used), n_cf, n_const))
    if errors:
        for e in errors:
            print("  MISMATCH: " + e)
        return 1
    print("check_julia_doc: every call matches include/disrnn.h")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
