//! The `ocap` binary is self-contained: copied out of the build tree, it still bundles and
//! runs `sourceSpec` vats, from the packages embedded in it (`ocap_vat::bundle_vat`), and a
//! vat's own `node_modules` still wins over them.
//!
//! The honest check that nothing comes from the build tree is to watch the copied binary's
//! file system calls: it runs under `strace -f -e trace=%file`, and no path it names may lie
//! under the workspace (which holds the source tree and the cargo target directory) or the
//! target directory the binary was built in. It needs `strace` (`apt-get install -y strace`):
//! without it the test says it skipped, except under CI (`OCAP_CI` set by `.ci/run`, which
//! installs strace), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

/// Held while a copy of the binary is written and while a child is started. Otherwise a child
/// forked by one test, between its fork and its exec, still holds the other test's copy open
/// for writing, and executing that copy fails with `ETXTBSY` ("Text file busy"): the classic
/// race of writing an executable in a process that forks from other threads.
static WRITE_OR_SPAWN: Mutex<()> = Mutex::new(());

/// `command`'s output, started under [`WRITE_OR_SPAWN`] (waited for outside it).
fn run(command: &mut Command) -> std::io::Result<Output> {
    let child = {
        let _guard = WRITE_OR_SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?
    };
    child.wait_with_output()
}

/// A copy of the built binary in a directory of its own, so that nothing about where it runs
/// from leads back to the build tree.
struct CopiedBinary {
    _dir: tempfile::TempDir,
    path: PathBuf,
    home: PathBuf,
}

fn copied_binary() -> CopiedBinary {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ocap");
    {
        let _guard = WRITE_OR_SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::copy(env!("CARGO_BIN_EXE_ocap"), &path).expect("copying the ocap binary");
    }
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("home dir");
    CopiedBinary { _dir: dir, path, home }
}

impl CopiedBinary {
    /// `program args…` in `cwd`, with an environment holding nothing but `PATH` and a fresh
    /// `HOME`: no cargo variables, no overrides.
    fn command(&self, program: &Path, cwd: &Path) -> Command {
        let mut command = Command::new(program);
        command.current_dir(cwd).env_clear().env("HOME", &self.home);
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command
    }

    fn ocap(&self, cwd: &Path) -> Command {
        self.command(&self.path, cwd)
    }
}

/// Directories the copied binary must not touch: the workspace (source tree and, by default,
/// the target directory) and the target directory the test binary was built into.
fn build_tree() -> Vec<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace");
    let built = Path::new(env!("CARGO_BIN_EXE_ocap")).canonicalize().expect("built binary");
    // target/<profile>/ocap → target
    let target = built.parent().and_then(Path::parent).expect("target dir").to_path_buf();
    vec![workspace, target]
}

/// The quoted strings of an strace line: the paths the call named.
fn quoted_paths(line: &str) -> Vec<&str> {
    line.split('"').skip(1).step_by(2).collect()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const VAT: &str = r#"
import { E } from '@endo/eventual-send';
import { Far } from '@endo/far';
import { makeExo } from '@endo/exo';
import { M, matches } from '@endo/patterns';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

const Adder = M.interface('Adder', { add: M.call(M.number(), M.number()).returns(M.number()) });

export function buildRootObject() {
  const thing = Far('thing', { hi: () => 'far' });
  const adder = makeExo('adder', Adder, { add: (a, b) => a + b });
  return makeDefaultExo('root', {
    async bootstrap() {
      let guard = 'unguarded';
      try {
        adder.add('two', 3);
      } catch {
        guard = 'guarded';
      }
      const sum = await E(adder).add(2, 3);
      return `${thing.hi()} ${sum} ${matches('s', M.string())} ${guard}`;
    },
  });
}
"#;

#[test]
fn a_copied_binary_runs_a_source_vat_without_the_build_tree() {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("strace"))
        .find(|p| p.is_file());
    let Some(strace) = found else {
        // CI installs strace and sets OCAP_CI: there, a missing strace is a failure.
        assert!(
            std::env::var_os("OCAP_CI").is_none(),
            "this test watches the binary with strace: install it (apt-get install -y strace)"
        );
        eprintln!("standalone_binary: skipped: strace not found (apt-get install -y strace to run it)");
        return;
    };
    let strace = strace.as_path();
    let binary = copied_binary();
    let work = tempfile::tempdir().expect("temp dir");
    let source = work.path().join("vat.js");
    std::fs::write(&source, VAT).expect("writing the vat");
    std::fs::write(work.path().join("cluster.json"), r#"{"bootstrap":"v","vats":{"v":{"sourceSpec":"vat.js"}}}"#)
        .expect("writing the cluster");
    let trace = work.path().join("strace.txt");

    let out = run(binary
        .command(strace, work.path())
        .arg("-f")
        .args(["-e", "trace=%file"])
        .arg("-o")
        .arg(&trace)
        .arg(&binary.path)
        .args(["run", "cluster.json"]))
    .expect("running the copied binary under strace");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout.trim(), "far 5 true guarded");

    let trace = std::fs::read_to_string(&trace).expect("reading the strace output");
    // The trace is real: it saw the binary start and the vat source being read.
    assert!(trace.contains(&binary.path.display().to_string()), "strace saw no exec of the binary:\n{trace}");
    assert!(
        trace
            .lines()
            .any(|l| l.contains("open") && quoted_paths(l).iter().any(|p| p.ends_with("/vat.js") || *p == "vat.js")),
        "strace saw no open of vat.js:\n{trace}"
    );
    let forbidden = build_tree();
    let touched: Vec<&str> = trace
        .lines()
        .filter(|line| quoted_paths(line).iter().any(|p| forbidden.iter().any(|dir| Path::new(p).starts_with(dir))))
        .collect();
    assert!(
        touched.is_empty(),
        "the copied binary looked into the build tree ({}):\n{}",
        forbidden.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
        touched.join("\n")
    );
}

/// A vat's own `node_modules` (searched upward from the source, as Node does) wins over the
/// embedded packages; what it lacks still comes from them (here `@endo/pass-style`, which the
/// vat's fake `@endo/far` imports).
#[test]
fn a_vats_own_node_modules_win_over_the_embedded_packages() {
    let binary = copied_binary();
    let work = tempfile::tempdir().expect("temp dir");
    let far = work.path().join("node_modules/@endo/far");
    std::fs::create_dir_all(&far).expect("fake package dir");
    std::fs::write(
        far.join("package.json"),
        r#"{"name":"@endo/far","version":"0.0.0-local","type":"module","exports":{".":"./index.js"}}"#,
    )
    .expect("fake package.json");
    std::fs::write(
        far.join("index.js"),
        "import { passStyleOf } from '@endo/pass-style';\n\
         export const whichFar = `the vat's own @endo/far, passStyleOf is a ${typeof passStyleOf}`;\n",
    )
    .expect("fake module");
    // The vat lives one directory down: the lookup goes upward.
    std::fs::create_dir(work.path().join("vats")).expect("vats dir");
    std::fs::write(
        work.path().join("vats/vat.js"),
        "import { whichFar } from '@endo/far';\n\
         import { makeDefaultExo } from '@metamask/kernel-utils/exo';\n\
         export function buildRootObject() {\n\
           return makeDefaultExo('root', { bootstrap: () => whichFar });\n\
         }\n",
    )
    .expect("writing the vat");
    std::fs::write(work.path().join("cluster.json"), r#"{"bootstrap":"v","vats":{"v":{"sourceSpec":"vats/vat.js"}}}"#)
        .expect("writing the cluster");

    let out = run(binary.ocap(work.path()).args(["run", "cluster.json"])).expect("running the copied binary");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout.trim(), "the vat's own @endo/far, passStyleOf is a function");
}
