//! Randomised test: several scripted vats make random legal and illegal syscalls, and the
//! invariant checker runs after every crank (style.md: assertions at crank boundaries).

mod common;
use common::*;

use std::sync::{Arc, Mutex};

use ocap_kernel::smallcaps::Value;
use ocap_kernel::testing::ScriptedVat;
use ocap_kernel::vat::{VatDelivery, VatResolution, VatSyscall};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Intent {
    Send { target: usize, slots: Vec<usize>, export: bool },
    ResolveOwn { which: usize, slot: Option<usize>, reject: bool },
    Subscribe(usize),
    Drop(usize),
    RetireImport(usize),
    RetireExport(usize),
    Abandon(usize),
    Garbage(u8),
    Exit(bool),
    Store(u8),
}

fn intent() -> impl Strategy<Value = Intent> {
    prop_oneof![
        12 => (any::<usize>(), prop::collection::vec(any::<usize>(), 0..3), any::<bool>())
            .prop_map(|(target, slots, export)| Intent::Send { target, slots, export }),
        10 => (any::<usize>(), prop::option::of(any::<usize>()), any::<bool>())
            .prop_map(|(which, slot, reject)| Intent::ResolveOwn { which, slot, reject }),
        4 => any::<usize>().prop_map(Intent::Subscribe),
        4 => any::<usize>().prop_map(Intent::Drop),
        3 => any::<usize>().prop_map(Intent::RetireImport),
        2 => any::<usize>().prop_map(Intent::RetireExport),
        1 => any::<usize>().prop_map(Intent::Abandon),
        1 => any::<u8>().prop_map(Intent::Garbage),
        1 => any::<bool>().prop_map(Intent::Exit),
        3 => any::<u8>().prop_map(Intent::Store),
    ]
}

/// What a random vat has seen: refs it can name, and promises it may decide.
#[derive(Default)]
struct Model {
    refs: Vec<String>,
    /// Imports dropped but not yet retired.
    dropped: Vec<String>,
    /// Exports the kernel has dropped (dropExports), which the vat may retire.
    kernel_dropped: Vec<String>,
    deciding: Vec<String>,
    next_export: u64,
    intents: Vec<Intent>,
}

impl Model {
    fn learn(&mut self, r: &str) {
        if !self.refs.iter().any(|x| x == r) {
            self.refs.push(r.to_string());
        }
    }
    fn pick(&self, i: usize) -> Option<String> {
        (!self.refs.is_empty()).then(|| self.refs[i % self.refs.len()].clone())
    }
    fn pick_where(&self, i: usize, f: impl Fn(&str) -> bool) -> Option<String> {
        let c: Vec<&String> = self.refs.iter().filter(|r| f(r)).collect();
        (!c.is_empty()).then(|| c[i % c.len()].clone())
    }
    fn fresh(&mut self, kind: char) -> String {
        self.next_export += 1;
        format!("{kind}+{}", 100 + self.next_export)
    }
}

fn body_for(slots: &[String]) -> String {
    let parts: Vec<String> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| if s.starts_with('p') { format!("\"&{i}\"") } else { format!("\"${i}.Alleged: r\"") })
        .collect();
    format!("#[\"m\",[{}]]", parts.join(","))
}

fn random_vat(model: Arc<Mutex<Model>>) -> ScriptedVat {
    ScriptedVat::new(Box::new(move |d, sys| {
        let mut m = model.lock().unwrap();
        match d {
            VatDelivery::Message { target, methargs, result } => {
                m.learn(target);
                for s in &methargs.slots {
                    m.learn(s);
                }
                if let Some(r) = result {
                    m.deciding.push(r.clone());
                }
            }
            VatDelivery::Notify(rs) => {
                for r in rs {
                    // Liveslots retires notified vpids.
                    m.refs.retain(|x| *x != r.vpid);
                    for s in &r.data.slots {
                        m.learn(s);
                    }
                }
            }
            VatDelivery::DropExports(v) => m.kernel_dropped.extend(v.iter().cloned()),
            VatDelivery::RetireExports(v) | VatDelivery::RetireImports(v) => {
                m.refs.retain(|x| !v.contains(x));
                m.dropped.retain(|x| !v.contains(x));
                m.kernel_dropped.retain(|x| !v.contains(x));
            }
            _ => {}
        }
        let take = m.intents.len().min(3);
        let batch: Vec<Intent> = m.intents.drain(..take).collect();
        for it in batch {
            let call = match it {
                Intent::Send { target, slots, export } => {
                    let Some(t) = m.pick(target) else { continue };
                    let mut ss: Vec<String> = slots.iter().filter_map(|i| m.pick(*i)).collect();
                    if export {
                        let e = m.fresh('o');
                        ss.push(e);
                    }
                    let result = m.fresh('p');
                    VatSyscall::Send {
                        target: t,
                        methargs: vdata(&body_for(&ss), &ss.iter().map(String::as_str).collect::<Vec<_>>()),
                        result: Some(result),
                    }
                }
                Intent::ResolveOwn { which, slot, reject } => {
                    if m.deciding.is_empty() {
                        continue;
                    }
                    let i = which % m.deciding.len();
                    let vpid = m.deciding.remove(i);
                    m.refs.retain(|x| *x != vpid);
                    let slots: Vec<String> = slot.and_then(|s| m.pick(s)).into_iter().collect();
                    let body = match slots.first() {
                        Some(s) if s.starts_with('p') => "#\"&0\"".to_string(),
                        Some(_) => "#\"$0.Alleged: r\"".to_string(),
                        None => "#1".to_string(),
                    };
                    VatSyscall::Resolve(vec![VatResolution {
                        vpid,
                        rejected: reject,
                        data: vdata(&body, &slots.iter().map(String::as_str).collect::<Vec<_>>()),
                    }])
                }
                Intent::Subscribe(i) => match m.pick_where(i, |r| r.starts_with('p')) {
                    Some(r) => VatSyscall::Subscribe(r),
                    None => continue,
                },
                Intent::Drop(i) => match m.pick_where(i, |r| r.starts_with("o-")) {
                    Some(r) => {
                        m.refs.retain(|x| *x != r);
                        m.dropped.push(r.clone());
                        VatSyscall::DropImports(vec![r])
                    }
                    None => continue,
                },
                Intent::RetireImport(i) => {
                    if m.dropped.is_empty() {
                        continue;
                    }
                    let n = i % m.dropped.len();
                    VatSyscall::RetireImports(vec![m.dropped.remove(n)])
                }
                Intent::RetireExport(i) => {
                    if m.kernel_dropped.is_empty() {
                        continue;
                    }
                    let n = i % m.kernel_dropped.len();
                    let r = m.kernel_dropped.remove(n);
                    m.refs.retain(|x| *x != r);
                    VatSyscall::RetireExports(vec![r])
                }
                Intent::Abandon(i) => match m.pick_where(i, |r| r.starts_with("o+") && r != "o+0") {
                    Some(r) => {
                        m.refs.retain(|x| *x != r);
                        VatSyscall::AbandonExports(vec![r])
                    }
                    None => continue,
                },
                Intent::Garbage(n) => send(&format!("o-{}", 1000 + n as u32), "m", &[], "p+999"),
                Intent::Exit(failure) => VatSyscall::Exit { failure, info: vdata("#\"bye\"", &[]) },
                Intent::Store(n) => VatSyscall::VatstoreSet(format!("k{n}"), "v".into()),
            };
            sys.syscall(call);
        }
        Ok(())
    }))
    .0
}

fn run_scenario(intents: Vec<(u8, Intent)>, rounds: usize) {
    let mut k = kernel_with(ocap_kernel::KernelOptions { cleanup_budget_entries: 3, ..Default::default() });
    let models: Vec<Arc<Mutex<Model>>> = (0..3).map(|_| Arc::new(Mutex::new(Model::default()))).collect();
    for (who, it) in intents {
        models[who as usize % 3].lock().unwrap().intents.push(it);
    }
    let mut roots = Vec::new();
    for (i, m) in models.iter().enumerate() {
        roots.push(k.add(&format!("v{i}"), random_vat(m.clone())));
    }
    for round in 0..rounds {
        for (i, (_, root)) in roots.iter().enumerate() {
            let other = roots[(i + 1 + round) % roots.len()].1;
            // Refused if the target has been collected already; that's fine.
            let _ = k.core.queue_message(*root, "go", vec![Value::presence(other, None)], None);
        }
        if round % 3 == 2 {
            k.core.reap_vats(None).unwrap();
        }
        let mut steps = 0;
        while k.core.step().unwrap() {
            k.check();
            steps += 1;
            assert!(steps < 10_000, "the kernel did not go idle");
        }
    }
    for (v, _) in &roots {
        let _ = k.core.terminate_vat(*v, "end of test");
    }
    while k.core.step().unwrap() {
        k.check();
    }
    assert_eq!(k.count("SELECT COUNT(*) FROM clist"), 0, "every c-list is cleaned up");
    assert_eq!(k.count("SELECT COUNT(*) FROM vats"), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_syscalls_never_break_store_invariants(intents in prop::collection::vec((0u8..3, intent()), 0..90)) {
        run_scenario(intents, 8);
    }
}
