//! The command line's promises that need no kernel: dry runs, one-line
//! errors with a location, exit codes by failure class.

mod common;
use common::*;

#[test]
fn dry_run_lists_the_default_matrix() {
    let o = bounce().args(["matrix", "--dry-run"]).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("12 cells x 3 repetitions = 36 boots"), "{out}");
    for id in ["6.12-fixed.dma32.memory.default", "6.12-dynamic.dma32.dmabench.256k", "6.12-dynamic.dma32.memory.1mib"]
    {
        assert!(out.contains(id), "{id} missing from:\n{out}");
    }
}

#[test]
fn broken_matrix_is_one_line_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("matrix.yaml");
    std::fs::write(&f, "repetitions: 3\nkernels: [6.12-fixed\nprofiles: [dma32]\n").unwrap();
    let o = bounce().args(["matrix", "--dry-run", "--matrix"]).arg(&f).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("bounce: input error: {}:", f.display())), "{err}");

    std::fs::write(
        &f,
        "repetitions: 3\nkernels: [6.12-fixed]\nprofiles: [dma32]\nworkloads: [memroy]\nswiotlb: {default: \"\"}\n",
    )
    .unwrap();
    let o = bounce().args(["matrix", "--dry-run", "--matrix"]).arg(&f).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("matrix.yaml:4: unknown workload `memroy`"), "{err}");
}

#[test]
fn missing_tools_name_the_one_command_that_installs_them() {
    // An empty PATH hides every tool; BOUNCE_NO_INSTALL stops a root run
    // from installing, which is what a non-root user would see.
    let o = bounce().arg("doctor").env("PATH", "/nonexistent").env("BOUNCE_NO_INSTALL", "1").output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}{err}");
    assert!(out.contains("MISSING flex"), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("install them with: sudo apt-get update -q && sudo apt-get install -y -q --no-install-recommends qemu-system-x86 && sudo apt-get install"), "{err}");
}

#[test]
fn unknown_variant_lists_the_known_ones() {
    let o = bounce().args(["build", "6.13-nope"]).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("unknown kernel variant `6.13-nope`") && err.contains("6.12-dynamic, 6.12-fixed"), "{err}");
}
