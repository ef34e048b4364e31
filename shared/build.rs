//! Embeds every migration file (`migrations/{account,shard}/NNNN_name.sql`) in the build, in
//! order, so native tests apply all of them and the drift check knows what "current" means.
use std::{env, fs, path::Path};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut out = String::new();
    for (konst, dir) in [("ACCOUNT", "account"), ("SHARD", "shard")] {
        let d = root.join(dir);
        println!("cargo:rerun-if-changed={}", d.display());
        let mut names: Vec<String> = fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("read {}: {e}", d.display()))
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        names.sort();
        out.push_str(&format!("pub const {konst}: &[Migration] = &[\n"));
        for n in names {
            let p = d.join(&n);
            println!("cargo:rerun-if-changed={}", p.display());
            out.push_str(&format!(
                "    Migration {{ name: {n:?}, sql: include_str!({:?}) }},\n",
                p.canonicalize().unwrap_or(p.clone()).display().to_string()
            ));
        }
        out.push_str("];\n");
    }
    let dest = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("migrations.rs");
    fs::write(dest, out).expect("write migrations.rs");
}
