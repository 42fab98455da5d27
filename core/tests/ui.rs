//! Compile errors of `#[aggregate]`, one case per rule, and cases that must compile. The
//! `.stderr` files are generated (`TRYBUILD=overwrite`) and reviewed; diagnostics drift
//! between compilers, so the test runs only on the toolchain that produced them.

#[rustversion::attr(not(stable(1.95)), ignore)]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
    t.pass("tests/expand/story.rs");
}
