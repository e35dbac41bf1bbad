//! Embeds the plugin contract (`wit/`) into the export macros, so that a plugin crate anywhere on
//! disk generates its bindings from exactly the contract this SDK was built against.

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let wit_file = manifest_dir.join("../wit/plugin.wit");
    println!("cargo:rerun-if-changed={}", wit_file.display());
    println!("cargo:rerun-if-changed=src/export_macros.rs.in");
    let wit = fs::read_to_string(&wit_file).expect("reading wit/plugin.wit");
    assert!(
        !wit.contains("\"####"),
        "wit text must not contain the raw-string terminator"
    );
    let template = include_str!("src/export_macros.rs.in");
    let generated = template.replace("@WIT@", &format!("r####\"{wit}\"####"));
    let out =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("export_macros.rs");
    fs::write(out, generated).expect("writing export_macros.rs");
}
