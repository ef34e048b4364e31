//! A plain module-worker entrypoint for worker-build's output, keeping its panic recovery.
//!
//! worker-build 0.8.7 exports a `WorkerEntrypoint` subclass behind a `Proxy`: workerd builds an
//! instance per request through the `construct` trap, each property read goes through a `get`
//! trap that wraps the handler in a second `Proxy` with an `async apply`, and all of it exists
//! to call `checkReinitialize()` before and `handleMaybeCritical(e)` on an error (the Wasm
//! instance is rebuilt after a `WebAssembly.RuntimeError`, a Rust panic). A V8 profile put that
//! wrapper at a measurable share of a GET's JavaScript time (bench/README.md).
//!
//! `rewrite` keeps the bundle as it is and changes only its default export to a plain object
//! `{ fetch(request, env, ctx), queue(batch, env, ctx), scheduled(event, env, ctx) }` that calls
//! the same two hooks around the same wasm-bindgen handler: the wasm `start`, the instance
//! reset and the `error` listener are untouched. The entrypoints take no per-request state (the
//! generated handlers ignore `this`; env and ctx are arguments) and none is an RPC method.
//!
//! `rewrite` also makes the futures executor schedule its polls with a promise reaction instead
//! of `queueMicrotask`: js-sys's queue uses `queueMicrotask` when the global has it and
//! `Promise.resolve().then(run)` otherwise, and workerd's `queueMicrotask` wraps every callback
//! in a fresh function (for its error reporting), the largest single item of the API's own
//! JavaScript in a profile of GET by id. The glue that looks the global up answers "absent";
//! the order of polls is the same (one microtask queue). A panic inside a poll then surfaces as
//! an unhandled rejection instead of an uncaught error, so the bundle's recovery hook listens
//! for both.
//!
//! The bundle is minified, so names are found from what worker-build 0.8.7 writes (pinned in
//! `toolchain`): any shape not found fails the build, naming what is missing, rather than
//! shipping the stock entrypoint unnoticed.

/// The handlers worker-build puts on its entrypoint class (`start` is the wasm start function,
/// exported as a method only by accident of the generator: it is not an entrypoint).
const HANDLERS: &[&str] = &["fetch", "queue", "scheduled"];

/// Marks a bundle already rewritten (a rebuild that left index.js unchanged is not rewritten
/// twice).
const MARK: &str = "/* xtask: plain entrypoint */";

/// The bundle with a plain object as its default export; `Ok(None)` when it already has one.
pub fn rewrite(js: &str) -> Result<Option<String>, String> {
    if js.contains(MARK) {
        return Ok(None);
    }
    if js.contains("__entry") {
        return Err("the bundle already names `__entry`".into());
    }
    let js = &no_queue_microtask(js)?;
    let class = entry_class(js)?;
    let handlers: Vec<(&str, String)> = HANDLERS
        .iter()
        .filter_map(|h| handler(js, &class, h).map(|f| (*h, f)))
        .collect();
    if handlers.is_empty() {
        return Err(format!(
            "no fetch/queue/scheduled handler on the entrypoint class {class}"
        ));
    }
    // Every method the class is given must be one rewritten here (or `start`): a handler of
    // another shape (worker-build's RUN_TO_COMPLETION fetch, an email or tail handler) would
    // otherwise be dropped from the export without a word.
    let assigned = format!("{class}.prototype.");
    for (at, _) in js.match_indices(&assigned) {
        let name = ident_after(js, at + assigned.len()).unwrap_or("");
        if name != "start" && !handlers.iter().any(|(h, _)| *h == name) {
            return Err(format!(
                "the entrypoint's `{name}` handler has a shape the rewrite does not know"
            ));
        }
    }
    let reinit = reinit_fn(js).ok_or("checkReinitialize not found")?;
    let critical = critical_fn(js).ok_or("handleMaybeCritical not found")?;
    let (export_at, export_end, default_name) = default_export(js)?;

    let mut object = String::new();
    for (name, f) in &handlers {
        object.push_str(&format!(
            "{name}(__a,__env,__ctx){{{reinit}();try{{return {f}(__a,__env,__ctx).catch(__entryRejected)}}catch(__e){{throw {critical}(__e),__e}}}},"
        ));
    }
    let export = &js[export_at..export_end];
    let export = export.replacen(
        &format!("{default_name} as default"),
        "__entry as default",
        1,
    );
    Ok(Some(format!(
        "{head}{MARK}function __entryRejected(__e){{throw {critical}(__e),__e}}addEventListener(\"unhandledrejection\",__e=>{{{critical}(__e.reason)}});var __entry={{{object}}};{export}{tail}",
        head = &js[..export_at],
        tail = &js[export_end..],
    )))
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// The identifier ending at byte `end` of `js`.
fn ident_before(js: &str, end: usize) -> Option<&str> {
    let start = js[..end]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident(*c))
        .last()
        .map(|(i, _)| i)?;
    Some(&js[start..end])
}

/// The identifier starting at byte `start` of `js`.
fn ident_after(js: &str, start: usize) -> Option<&str> {
    let len = js[start..]
        .find(|c| !is_ident(c))
        .unwrap_or(js.len() - start);
    (len > 0).then(|| &js[start..start + len])
}

/// `var W=class extends X{};`: the entrypoint class.
fn entry_class(js: &str) -> Result<String, String> {
    let mut found = js.match_indices("=class extends ").filter_map(|(i, m)| {
        let rest = &js[i + m.len()..];
        let base = ident_after(rest, 0)?;
        rest[base.len()..]
            .starts_with("{};")
            .then(|| ident_before(js, i))
            .flatten()
    });
    let class = found
        .next()
        .ok_or("the entrypoint class (`=class extends ...{};`) not found")?;
    if found.next().is_some() {
        return Err("more than one empty `class extends` in the bundle".into());
    }
    Ok(class.to_string())
}

/// `__wbg_queueMicrotask_<hash>:function(t){return t.queueMicrotask}` (js-sys's lookup of the
/// global's `queueMicrotask`) answering nothing, so its queue falls back to a promise reaction.
fn no_queue_microtask(js: &str) -> Result<String, String> {
    let mut out = String::with_capacity(js.len());
    let mut rest = js;
    let mut found = 0;
    while let Some(at) = rest.find("__wbg_queueMicrotask_") {
        let name_end = at
            + rest[at..]
                .find(':')
                .ok_or("unterminated queueMicrotask glue")?;
        let after = &rest[name_end + 1..];
        let lookup = after.strip_prefix("function(").and_then(|r| {
            let arg = ident_after(r, 0)?;
            let body = format!("{arg}){{return {arg}.queueMicrotask}}");
            r.starts_with(&body)
                .then_some(("function(".len() + body.len(), arg))
        });
        match lookup {
            Some((len, arg)) => {
                out.push_str(&rest[..name_end + 1]);
                out.push_str(&format!("function({arg}){{}}"));
                rest = &after[len..];
                found += 1;
            }
            None => {
                out.push_str(&rest[..name_end + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    match found {
        1 => Ok(out),
        0 => Err("the queueMicrotask lookup glue not found".into()),
        _ => Err("more than one queueMicrotask lookup glue".into()),
    }
}

/// `W.prototype.fetch=function(t){return Z.call(this,t,this.env,this.ctx)}`: Z.
fn handler(js: &str, class: &str, name: &str) -> Option<String> {
    let head = format!("{class}.prototype.{name}=function(");
    let at = js.find(&head)? + head.len();
    let arg = ident_after(js, at)?;
    let body = format!("{arg}){{return ");
    let rest = js[at + arg.len()..].strip_prefix(&body[arg.len()..])?;
    let f = ident_after(rest, 0)?;
    rest[f.len()..]
        .starts_with(&format!(".call(this,{arg},this.env,this.ctx)}}"))
        .then(|| f.to_string())
}

/// `function J(){y.criticalError&&(console.log("Reinitializing Wasm application")`: J.
fn reinit_fn(js: &str) -> Option<&str> {
    let at = js.find(".criticalError&&(console.log(\"Reinitializing Wasm application\")")?;
    let state = ident_before(js, at)?;
    function_named(js, js[..at - state.len()].strip_suffix("(){")?.len())
}

/// `function H(r){r instanceof WebAssembly.RuntimeError&&`: H.
fn critical_fn(js: &str) -> Option<&str> {
    let suffix = " instanceof WebAssembly.RuntimeError&&";
    js.match_indices(suffix).find_map(|(at, _)| {
        let arg = ident_before(js, at)?;
        let head = js[..at - arg.len()].strip_suffix(&format!("({arg}){{"))?;
        function_named(js, head.len())
    })
}

/// The name of `function NAME` when it ends at byte `end` of `js`.
fn function_named(js: &str, end: usize) -> Option<&str> {
    let name = ident_before(js, end)?;
    js[..end - name.len()]
        .ends_with("function ")
        .then_some(name)
}

/// The last `export{...}` and the name it exports as default: (start, end, name).
fn default_export(js: &str) -> Result<(usize, usize, &str), String> {
    let at = js
        .rfind("export{")
        .ok_or("no `export{...}` in the bundle")?;
    let end = at + js[at..].find('}').ok_or("unterminated export")? + 1;
    let list = &js[at + "export{".len()..end - 1];
    let name = list
        .split(',')
        .find_map(|e| e.trim().strip_suffix(" as default"))
        .ok_or("the bundle has no default export")?;
    Ok((at, end, name.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape worker-build 0.8.7 writes, cut down (names as in a real minified bundle).
    const BUNDLE: &str = concat!(
        "import{WorkerEntrypoint as yt}from\"cloudflare:workers\";",
        "function Z(r,t,e){let n;s();try{n=i.fetch(r,t,e)}catch(_){c(_)}return n}",
        "function Y(r,t,e){return i.queue(r,t,e)}",
        "var G={__wbg_queueMicrotask_9833f9a49df95a49:function(t){return t.queueMicrotask},",
        "__wbg_queueMicrotask_a72f977e97f23c5f:function(t){queueMicrotask(t)}};",
        "var y={criticalError:!1,instanceId:0};",
        "function J(){y.criticalError&&(console.log(\"Reinitializing Wasm application\"),M(),y.criticalError=!1,y.instanceId++)}",
        "addEventListener(\"error\",r=>{H(r.error)});",
        "function H(r){r instanceof WebAssembly.RuntimeError&&(console.error(\"Critical\",r),y.criticalError=!0)}",
        "var W=class extends yt{};",
        "W.prototype.fetch=function(t){return Z.call(this,t,this.env,this.ctx)};",
        "W.prototype.queue=function(t){return Y.call(this,t,this.env,this.ctx)};",
        "W.prototype.start=tt;",
        "var Rt=new Proxy(W,P),Ft=new Proxy(v,P);",
        "export{Ft as ContainerStartupOptions,Rt as default};"
    );

    #[test]
    fn the_default_export_becomes_a_plain_object_calling_the_recovery_hooks() {
        let out = rewrite(BUNDLE).unwrap().unwrap();
        assert!(out.ends_with("export{Ft as ContainerStartupOptions,__entry as default};"));
        assert!(out.contains(
            "fetch(__a,__env,__ctx){J();try{return Z(__a,__env,__ctx).catch(__entryRejected)}catch(__e){throw H(__e),__e}}"
        ));
        assert!(out.contains(
            "queue(__a,__env,__ctx){J();try{return Y(__a,__env,__ctx).catch(__entryRejected)}catch(__e){throw H(__e),__e}}"
        ));
        assert!(out.contains("function __entryRejected(__e){throw H(__e),__e}"));
        assert!(!out.contains("scheduled("), "no handler the class lacks");
        // js-sys finds no queueMicrotask (so it schedules with a promise); the call glue stays.
        assert!(out.contains("__wbg_queueMicrotask_9833f9a49df95a49:function(t){}"));
        assert!(
            out.contains("__wbg_queueMicrotask_a72f977e97f23c5f:function(t){queueMicrotask(t)}")
        );
        assert!(out.contains("addEventListener(\"unhandledrejection\",__e=>{H(__e.reason)})"));
        // The rest of the bundle is kept byte for byte.
        let lookup = "function(t){return t.queueMicrotask}";
        let kept = BUNDLE[..BUNDLE.rfind("export{").unwrap()].replace(lookup, "function(t){}");
        assert!(out.starts_with(&kept));
    }

    #[test]
    fn a_rewritten_bundle_is_left_as_it_is() {
        let once = rewrite(BUNDLE).unwrap().unwrap();
        assert_eq!(rewrite(&once).unwrap(), None);
    }

    #[test]
    fn a_bundle_of_another_shape_fails_the_build_naming_what_is_missing() {
        let no_hook = BUNDLE.replace("Reinitializing Wasm application", "Reinit");
        assert_eq!(
            rewrite(&no_hook).unwrap_err(),
            "checkReinitialize not found"
        );
        let no_class = BUNDLE.replace("=class extends yt{};", "=class extends yt{x(){}};");
        assert!(rewrite(&no_class).unwrap_err().contains("entrypoint class"));
        let other_call = BUNDLE
            .replace("return Z.call(this,t,this.env,this.ctx)", "return Z(t)")
            .replace("return Y.call(this,t,this.env,this.ctx)", "return Y(t)");
        assert!(rewrite(&other_call).unwrap_err().contains("no fetch/queue"));
        let no_lookup = BUNDLE.replace("return t.queueMicrotask", "return t.qm");
        assert!(rewrite(&no_lookup)
            .unwrap_err()
            .contains("queueMicrotask lookup"));
        let other_fetch = BUNDLE.replace(
            "W.prototype.fetch=function(t){return Z.call(this,t,this.env,this.ctx)};",
            "W.prototype.fetch=async function(t){let r=Z(t,this.env,this.ctx);return r};",
        );
        assert!(rewrite(&other_fetch)
            .unwrap_err()
            .contains("`fetch` handler"));
        let email = BUNDLE.replace(
            "W.prototype.start=tt;",
            "W.prototype.start=tt;W.prototype.email=E;",
        );
        assert!(rewrite(&email).unwrap_err().contains("`email` handler"));
        let no_default = BUNDLE.replace(",Rt as default", "");
        assert!(rewrite(&no_default)
            .unwrap_err()
            .contains("no default export"));
    }
}
