//! OCAP URLs issued and redeemed by one kernel (remote-comms.md §3.1–3.3), with scripted vats:
//! the URL's layout, local redemption, the errors the JS kernel names, and our difference from
//! it: an issued URL pins its object until the URL is revoked (§3.3 says the JS kernel takes
//! no pin, so its URLs can outlive their objects).

mod common;

use common::*;
use ocap_kernel::remote::ocap_url::OcapUrl;
use ocap_kernel::smallcaps::Value;
use ocap_kernel::testing::{answer, ScriptedVat};
use ocap_kernel::vat::VatDelivery;
use ocap_kernel::{KRef, KernelError};

/// A vat whose `make()` answers a new export `o+1`; the host gets it pinned.
fn kernel_with_object() -> (TestKernel, ocap_kernel::testing::DeliveryLog, KRef) {
    let mut k = kernel();
    let (vat, log) = ScriptedVat::new(answer(|_, _| {
        Ok(Value::Remotable { slot: "o+1".to_string(), iface: Some("Alleged: thing".into()) })
    }));
    let (_, root) = k.add("maker", vat);
    let Value::Remotable { slot: obj, .. } = ok_value(k.call(root, "make", vec![])) else { panic!("not an object") };
    log.take();
    (k, log, obj)
}

fn url_error(r: Result<impl std::fmt::Debug, KernelError>) -> String {
    match r {
        Err(KernelError::OcapUrl(text)) => text,
        other => panic!("expected an OCAP URL error, got {other:?}"),
    }
}

#[test]
fn an_issued_url_names_this_kernel_and_redeems_to_its_object_3_1() {
    let (mut k, _log, obj) = kernel_with_object();
    assert!(k.core.identity().unwrap().is_none(), "no identity before the first URL");
    let url = k.core.issue_ocap_url(obj).expect("issue");
    let parsed = OcapUrl::parse(&url).expect("our URL parses");
    let peer = k.core.identity().unwrap().expect("identity made on first use").peer_id;
    assert_eq!(parsed.host, peer);
    assert!(peer.starts_with("12D3KooW") && parsed.oid.starts_with('z') && parsed.hints.is_empty(), "{url}");
    assert_eq!(k.core.redeem_ocap_url(&url).expect("redeem"), obj);
    // A fresh salt and nonce each time: two URLs for one object differ, and both redeem.
    let again = k.core.issue_ocap_url(obj).expect("issue again");
    assert_ne!(again, url);
    assert_eq!(k.core.redeem_ocap_url(&again).expect("redeem"), obj);
    k.check();
}

#[test]
fn a_url_keeps_its_object_alive_until_it_is_revoked() {
    let (mut k, log, obj) = kernel_with_object();
    let url = k.core.issue_ocap_url(obj).expect("issue");
    // The host lets go of the object: the URL still holds it.
    k.core.unpin(obj).expect("unpin");
    k.run();
    assert!(k.core.store().object(obj).unwrap().is_some(), "the URL keeps the object");
    assert!(log.take().is_empty(), "nothing told the exporter to drop it");
    assert_eq!(k.core.redeem_ocap_url(&url).expect("still redeemable"), obj);
    k.check();

    k.core.revoke_ocap_url(&url).expect("revoke");
    k.run();
    let deliveries = log.take();
    assert!(deliveries.contains(&VatDelivery::DropExports(vec!["o+1".into()])), "{deliveries:?}");
    assert!(k.core.store().object(obj).unwrap().is_none(), "collected once the URL is revoked");
    assert_eq!(url_error(k.core.redeem_ocap_url(&url)), "ocapURL has been revoked");
    assert_eq!(url_error(k.core.revoke_ocap_url(&url)), "ocapURL has been revoked");
    k.check();
}

#[test]
fn bad_urls_are_refused_with_the_js_kernels_texts_3_2_3_3() {
    let (mut k, _log, obj) = kernel_with_object();
    let url = k.core.issue_ocap_url(obj).expect("issue");
    let parsed = OcapUrl::parse(&url).unwrap();
    let relay_peer = "12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc";
    let foreign = OcapUrl { host: relay_peer.into(), ..parsed.clone() }.to_string();
    assert_eq!(url_error(k.core.redeem_ocap_url(&foreign)), "ocapURL from a host that's not me");
    let tampered = OcapUrl { oid: format!("{}1", parsed.oid), ..parsed.clone() }.to_string();
    assert_eq!(url_error(k.core.redeem_ocap_url(&tampered)), "ocapURL has bad object reference");
    assert_eq!(url_error(k.core.redeem_ocap_url("https://example.com/x")), "not an ocap URL");
    assert_eq!(url_error(k.core.redeem_ocap_url("ocap:nohost")), "bad ocap URL");
    assert_eq!(url_error(k.core.redeem_ocap_url("no url at all")), "unparseable URL");
    assert!(matches!(k.core.issue_ocap_url(KRef::Promise(1)), Err(KernelError::NotAnObject(..))));
    assert!(matches!(k.core.issue_ocap_url(KRef::Object(999)), Err(KernelError::UnknownKref(_))));
    // A URL for a kref this kernel never issued (right key, no record) is refused too.
    let identity = k.core.identity().unwrap().unwrap();
    let forged_oid = ocap_kernel::remote::ocap_url::encrypt_oid(&identity.ocap_url_key, &obj.to_string());
    let forged = OcapUrl { oid: forged_oid, ..parsed }.to_string();
    assert_eq!(url_error(k.core.redeem_ocap_url(&forged)), "ocapURL has bad object reference");
    k.check();
}

#[test]
fn urls_and_the_identity_survive_a_restart_1_1() {
    let (mut k, _log, obj) = kernel_with_object();
    let url = k.core.issue_ocap_url(obj).expect("issue");
    let peer = k.core.identity().unwrap().unwrap().peer_id;
    let mut k = k.restart();
    assert_eq!(k.core.identity().unwrap().unwrap().peer_id, peer, "same peer ID after a restart");
    assert_eq!(k.core.redeem_ocap_url(&url).expect("redeem after restart"), obj);
    k.check();
}

/// The pins URLs hold are theirs: the host cannot unpin them, and a vat's termination does
/// not take them for the vat's own pin on its root (the host may have released that one).
#[test]
fn url_pins_are_released_only_by_revoking() {
    let mut k = kernel();
    let (vat, _log) = ScriptedVat::new(answer(|_, _| Ok(Value::str("hi"))));
    let (v, root) = k.add("a", vat);
    k.core.unpin(root).expect("the host releases the vat's pin on its root");
    let url = k.core.issue_ocap_url(root).expect("issue");
    assert!(k.core.unpin(root).is_err(), "the URL's pin is not the host's to release");
    k.core.terminate_vat(v, "bye").expect("terminate");
    k.run();
    assert!(k.core.store().object(root).unwrap().is_some(), "the URL still holds the orphaned root");
    assert_eq!(k.core.redeem_ocap_url(&url).expect("still redeemable"), root);
    k.check();
    k.core.revoke_ocap_url(&url).expect("revoke");
    k.run();
    assert!(k.core.store().object(root).unwrap().is_none(), "collected once revoked");
    k.check();
}

/// Redeeming is cheap for what this kernel did not issue, and makes no identity.
#[test]
fn redeeming_makes_no_identity_and_long_oids_are_refused_unread() {
    let (mut k, _log, obj) = kernel_with_object();
    let relay_peer = "12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc";
    let anything = format!("ocap:z111@{relay_peer}");
    assert_eq!(url_error(k.core.redeem_ocap_url(&anything)), "ocapURL from a host that's not me");
    assert!(k.core.identity().unwrap().is_none(), "a redemption made no identity");
    let url = k.core.issue_ocap_url(obj).expect("issue");
    let parsed = OcapUrl::parse(&url).unwrap();
    let long = OcapUrl { oid: format!("z{}", "2".repeat(1_000_000)), ..parsed }.to_string();
    assert_eq!(url_error(k.core.redeem_ocap_url(&long)), "ocapURL has bad object reference");
    k.check();
}

/// The unrevoked URLs can be listed (with their objects), so a URL whose text was lost, such
/// as one issued just before a crash, can still be revoked and its object released.
#[test]
fn live_urls_are_listed_and_a_listed_url_can_be_revoked() {
    let (mut k, _log, obj) = kernel_with_object();
    assert!(k.core.live_ocap_urls().unwrap().is_empty());
    let first = k.core.issue_ocap_url(obj).expect("issue");
    let second = k.core.issue_ocap_url(obj).expect("issue");
    let mut listed = k.core.live_ocap_urls().unwrap();
    listed.sort();
    let mut expected = vec![(first.clone(), obj), (second.clone(), obj)];
    expected.sort();
    assert_eq!(listed, expected, "the listed URLs are the issued ones, byte for byte");
    k.core.revoke_ocap_url(&listed[0].0).expect("revoke a listed URL");
    assert_eq!(k.core.live_ocap_urls().unwrap().len(), 1);
    k.check();
}
