//! Compile-time behaviour of the decorators: shapes that must compile (`ui/pass`) and
//! misuse that must fail with an error pointing at the offending tokens (`ui/fail`, expected
//! output in the `.stderr` files; regenerate with `TRYBUILD=overwrite`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
