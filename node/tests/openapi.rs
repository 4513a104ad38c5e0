//! The checked-in API document must be what the code generates.
//! Regenerate with `BM_UPDATE_OPENAPI=1 cargo test -p bm-node --test openapi`.

use std::path::PathBuf;

#[test]
fn checked_in_openapi_document_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let generated = bm_node::openapi::document();
    if std::env::var_os("BM_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json is stale: run `BM_UPDATE_OPENAPI=1 cargo test -p bm-node --test openapi` and commit it"
    );
}
