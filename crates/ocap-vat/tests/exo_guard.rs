//! The passable method guard of `makeDefaultExo` (every method of a JS-kernel-style vat)
//! accepts exactly the passable arguments and results and refuses the others with
//! @endo/exo's own messages. Our patch to @endo/exo (js/patches/README.md) asks
//! `passStyleOf` before running the pattern matcher; the expected answers below are what
//! the unpatched package answers, so this test holds the patch to them.

mod common;

#[test]
fn the_passable_guard_accepts_and_refuses_what_endo_does_with_its_messages() {
    let worker = common::start_vat("exo-guard-vat");
    let answers = common::call(&worker, "probe", serde_json::json!([]));
    let answers: Vec<String> =
        answers.as_array().expect("an array").iter().map(|a| a.as_str().expect("text").to_string()).collect();
    let expected = [
        "nothing: ok: 0",
        "plain: ok: 6",
        "remotable and promise: ok: 2",
        "error: ok: 1",
        r#"function: threw: In "count" method of (inner): Remotables must be explicitly declared: "[Function <anon>]""#,
        r#"nested function: threw: In "count" method of (inner): Remotables must be explicitly declared: {"f":"[Function f]"}"#,
        r#"accessor: threw: In "count" method of (inner): "x" must not be an accessor property: {"x":1}"#,
        r#"symbol: threw: In "count" method of (inner): Only registered symbols or well-known symbols are passable: "[Symbol(local)]""#,
        // An argument's tag is never looked up; a result's is (`kindOf`), and a tag that names
        // an `Object.prototype` member trips that lookup: the matcher refuses what
        // `passStyleOf` accepts, so the patch leaves tagged results to the matcher.
        "tagged named like an Object.prototype member: ok: 1",
        "record: ok: [object Object]",
        "unhardened: ok: [object Object]",
        r#"function: threw: In "give" method of (inner): result: Remotables must be explicitly declared: "[Function <anon>]""#,
        r#"accessor: threw: In "give" method of (inner): result: "x" must not be an accessor property: {"x":1}"#,
        "promise: ok: [object Promise]",
        "remotable: ok: [object Alleged: thing]",
        "error: ok: Error: boom",
        r#"nested-function: threw: In "give" method of (inner): result: Remotables must be explicitly declared: {"f":"[Function f]"}"#,
        "undefined: ok: undefined",
        "tagged: ok: [object match:any]",
        r#"tagged named like an Object.prototype member: threw: In "give" method of (inner): result: not a function"#,
        "tagged copySet out of order: ok: [object copySet]",
        "text: ok: text",
        "arguments hardened: true",
        "result hardened: true",
    ];
    assert_eq!(answers, expected);
}
