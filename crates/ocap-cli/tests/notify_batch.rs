//! Notify batches with real JS vats (`docs/cranks.md`, "Notify batches";
//! `ocap-kernel/src/core/notify_batch.rs`): the answers to many messages sent at once reach
//! the sender in a few `notify` deliveries, and liveslots takes them as it takes the
//! batches of spec kernel-core.md §4.3: every promise settles, each with its own value, in
//! the order the answers were queued, as when each came in a delivery of its own.

mod common;
use common::*;

use ocap_kernel::config::ClusterConfig;
use ocap_kernel::smallcaps::{kunser, Value};
use ocap_kernel::{Kernel, KernelConfig, KernelOptions, TracedWork};

/// `sendAll(n)` from the sender vat; returns its result and, per notify crank to it, how many
/// promises that delivery settled.
fn send_all(max_notifies_per_delivery: usize, n: usize) -> (Value, Vec<usize>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let options = KernelOptions { max_notifies_per_delivery, ..Default::default() };
        let kernel: Kernel =
            js_kernel(&dir.path().join("kernel.sqlite"), KernelConfig { options, ..Default::default() }, test_vats());
        let cluster = ClusterConfig::from_json(
            r#"{"bootstrap":"sender","vats":{"sender":{"sourceSpec":"answers.js"},"echo":{"sourceSpec":"answers.js"}}}"#,
        )
        .expect("cluster config");
        let launched = kernel.launch_subcluster(cluster).await.expect("launch");
        assert_eq!(kunser(&launched.bootstrap_result).ok(), Some(Value::String("ready".into())));
        let mut traces = kernel.trace_subscribe();
        let result = kernel.queue_message(launched.root_kref, "sendAll", vec![Value::Number(n as f64)]).await;
        let value = match result.expect("kernel") {
            Ok(v) => kunser(&v).expect("result"),
            Err(e) => panic!("sendAll rejected: {:?}", kunser(&e)),
        };
        let mut batches = Vec::new();
        while let Ok(trace) = traces.try_recv() {
            if let TracedWork::Notify { batched, .. } = trace.work {
                batches.push(1 + batched.len());
            }
        }
        assert_eq!(kernel.check_invariants().await.expect("check"), Ok(()));
        kernel.stop().await.expect("stop");
        (value, batches)
    })
}

#[test]
fn answers_to_messages_sent_at_once_settle_in_order_in_few_deliveries() {
    let n = 100;
    let in_order = Value::Array((0..n).map(|i| Value::Number(i as f64)).collect());
    let expected =
        Value::Record(vec![("first".into(), in_order.clone()), ("chained".into(), in_order)].into_iter().collect());

    let (batched, batches) = send_all(32, n);
    assert_eq!(batched, expected);
    // The answers' notifies, plus the host's: fewer deliveries than answers, none over 32.
    assert_eq!(batches.iter().sum::<usize>(), n, "{batches:?}");
    assert!(batches.len() < n / 2, "{batches:?}");
    assert!(batches.iter().all(|&b| b <= 32), "{batches:?}");

    // One at a time, as the JS kernel delivers them: the same answers in the same order.
    let (single, batches) = send_all(1, n);
    assert_eq!(single, expected);
    assert_eq!(batches, vec![1; n]);
}
