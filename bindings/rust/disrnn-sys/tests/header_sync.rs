//! The committed declarations must match the header they were generated from, and the loaded
//! library must be the version the declarations describe.
use disrnn_sys as sys;
use std::ffi::CStr;
use std::path::PathBuf;

#[test]
fn runtime_version_matches_declarations() {
    let n = unsafe { sys::disrnn_version_number() };
    assert_eq!(n, sys::DISRNN_VERSION_NUMBER, "loaded library is not the declared version");
    let s = unsafe { CStr::from_ptr(sys::disrnn_version_string()) };
    let decl = CStr::from_bytes_with_nul(sys::DISRNN_VERSION_STRING).unwrap();
    assert_eq!(s, decl);
}

#[test]
fn status_strings_are_static_and_never_null() {
    for st in [sys::DISRNN_OK, sys::DISRNN_ERR_INVALID_ARG, sys::DISRNN_ERR_DATA, 12345, -12345] {
        let p = unsafe { sys::disrnn_status_string(st) };
        assert!(!p.is_null());
        let text = unsafe { CStr::from_ptr(p) }.to_str().unwrap();
        assert!(!text.is_empty());
    }
}

#[test]
fn function_list_matches_header() {
    let header = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../include/disrnn.h");
    let text = match std::fs::read_to_string(&header) {
        Ok(t) => t,
        Err(_) => {
            println!("skipped: {} not found (crate used outside the repository)", header.display());
            return;
        }
    };
    // Every `DISRNN_API <ret> disrnn_name(` outside comments and #define lines.
    let mut names = Vec::new();
    let mut in_comment = false;
    let mut code = String::new();
    for line in text.lines() {
        let mut l = line.to_string();
        if in_comment {
            match l.find("*/") {
                Some(i) => {
                    l = l[i + 2..].to_string();
                    in_comment = false;
                }
                None => continue,
            }
        }
        while let Some(i) = l.find("/*") {
            match l[i..].find("*/") {
                Some(j) => l = format!("{}{}", &l[..i], &l[i + j + 2..]),
                None => {
                    l.truncate(i);
                    in_comment = true;
                }
            }
        }
        if l.trim_start().starts_with('#') {
            continue;
        }
        code.push_str(&l);
        code.push(' ');
    }
    for piece in code.split("DISRNN_API").skip(1) {
        let decl = &piece[..piece.find('(').expect("declaration without '('")];
        let name = decl.split(|c: char| c == '*' || c.is_whitespace()).rfind(|s| !s.is_empty()).unwrap();
        names.push(name.to_string());
    }
    let declared: Vec<String> = sys::FUNCTION_NAMES.iter().map(|s| s.to_string()).collect();
    assert_eq!(names, declared, "src/lib.rs is stale: run gen/gen_sys.py");
}
