//! The preview1 host (`src/wasi.rs`) seen from a guest: what the supported calls
//! return, the errno of everything the sandbox does not offer, and how bad pointers
//! end a run. The values are the ones wasmtime-wasi 48 gave with the same sandbox.

use rule_engine::{LoadedModule, ModuleHash, RunError};

use crate::common::{engine, load, run};

/// Compiles and loads without the upload check, so modules may import the
/// functions uploads refuse (`poll_oneoff`, sockets) or lack a `memory` export.
fn load_unchecked(wasm: &[u8]) -> LoadedModule {
    let artifact = engine().precompile(wasm).expect("precompile");
    // SAFETY: the artifact comes from `precompile` just above.
    unsafe { engine().load_artifact(ModuleHash::of(wasm), &artifact) }.expect("load")
}

/// A module whose `_start` runs `body`; `$expect` exits with status `id` unless its
/// first two arguments are equal, and `$answer` writes a valid output.
fn module(imports: &str, body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  {imports}
  (memory (export "memory") 1)
  (data (i32.const 4000) "{{\"clusters\": {{}}}}")
  (func $expect (param $got i32) (param $want i32) (param $id i32)
    (if (i32.ne (local.get $got) (local.get $want)) (then (call $exit (local.get $id)))))
  (func $expect64 (param $got i64) (param $want i64) (param $id i32)
    (if (i64.ne (local.get $got) (local.get $want)) (then (call $exit (local.get $id)))))
  (func $answer
    (i32.store (i32.const 3000) (i32.const 4000))
    (i32.store (i32.const 3004) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 3000) (i32.const 1) (i32.const 3008))))
  (func (export "_start") {body} (call $answer)))"#
    ))
    .expect("valid WAT")
}

fn assert_runs(wasm: &[u8], input: &[u8]) {
    let report = engine().run(&load_unchecked(wasm), input, &Default::default());
    match report.outcome {
        Ok(_) => {}
        Err(RunError::Exit(check)) => panic!("check {check} failed; logs: {}", report.logs),
        Err(error) => panic!("{error}; logs: {}", report.logs),
    }
}

#[test]
fn stdio_args_environment_and_clocks() {
    let wasm = module(
        r#"
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $filestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $time (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_res_get" (func $res (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))"#,
        r#"
    ;; stdin: filetype unknown, no flags, rights fd_read; stdout: fd_write.
    (call $expect (call $fdstat (i32.const 0) (i32.const 64)) (i32.const 0) (i32.const 10))
    (call $expect (i32.load8_u (i32.const 64)) (i32.const 0) (i32.const 11))
    (call $expect64 (i64.load (i32.const 72)) (i64.const 2) (i32.const 12))
    (call $expect64 (i64.load (i32.const 80)) (i64.const 2) (i32.const 13))
    (call $expect (call $fdstat (i32.const 1) (i32.const 64)) (i32.const 0) (i32.const 14))
    (call $expect64 (i64.load (i32.const 72)) (i64.const 64) (i32.const 15))
    (call $expect (call $fdstat (i32.const 3) (i32.const 64)) (i32.const 8) (i32.const 16))
    (call $expect (call $filestat (i32.const 2) (i32.const 128)) (i32.const 0) (i32.const 17))
    (call $expect (call $filestat (i32.const 3) (i32.const 128)) (i32.const 8) (i32.const 18))
    ;; argv = ["rule"]
    (call $expect (call $args_sizes (i32.const 64) (i32.const 68)) (i32.const 0) (i32.const 20))
    (call $expect (i32.load (i32.const 64)) (i32.const 1) (i32.const 21))
    (call $expect (i32.load (i32.const 68)) (i32.const 5) (i32.const 22))
    (call $expect (call $args (i32.const 80) (i32.const 96)) (i32.const 0) (i32.const 23))
    (call $expect (i32.load (i32.const 80)) (i32.const 96) (i32.const 24))
    (call $expect (i32.load (i32.const 96)) (i32.const 0x656c7572) (i32.const 25))
    (call $expect (i32.load8_u (i32.const 100)) (i32.const 0) (i32.const 26))
    ;; no environment
    (call $expect (call $env_sizes (i32.const 64) (i32.const 68)) (i32.const 0) (i32.const 30))
    (call $expect (i32.load (i32.const 64)) (i32.const 0) (i32.const 31))
    (call $expect (i32.load (i32.const 68)) (i32.const 0) (i32.const 32))
    ;; frozen clocks: monotonic is 0, the wall clock does not move, CPU clocks are EBADF
    (call $expect (call $time (i32.const 1) (i64.const 0) (i32.const 64)) (i32.const 0) (i32.const 40))
    (call $expect64 (i64.load (i32.const 64)) (i64.const 0) (i32.const 41))
    (call $expect (call $time (i32.const 0) (i64.const 0) (i32.const 64)) (i32.const 0) (i32.const 42))
    (call $expect (call $time (i32.const 0) (i64.const 0) (i32.const 72)) (i32.const 0) (i32.const 43))
    (call $expect64 (i64.load (i32.const 64)) (i64.load (i32.const 72)) (i32.const 44))
    (call $expect (call $res (i32.const 0) (i32.const 64)) (i32.const 0) (i32.const 45))
    (call $expect64 (i64.load (i32.const 64)) (i64.const 1000000000) (i32.const 46))
    (call $expect (call $time (i32.const 2) (i64.const 0) (i32.const 64)) (i32.const 8) (i32.const 47))
    ;; fixed "random" bytes, continuing across calls
    (call $expect (call $random (i32.const 64) (i32.const 4)) (i32.const 0) (i32.const 50))
    (call $expect (i32.load (i32.const 64)) (i32.const 0xd63a9e02) (i32.const 51))
    (call $expect (call $random (i32.const 64) (i32.const 1)) (i32.const 0) (i32.const 52))
    (call $expect (i32.load8_u (i32.const 64)) (i32.const 114) (i32.const 53))
    ;; stdin: a zero-length read while input remains is EINTR; then the bytes
    (i32.store (i32.const 200) (i32.const 300))
    (i32.store (i32.const 204) (i32.const 0))
    (call $expect (call $fd_read (i32.const 0) (i32.const 200) (i32.const 1) (i32.const 208)) (i32.const 27) (i32.const 60))
    (i32.store (i32.const 204) (i32.const 64))
    (call $expect (call $fd_read (i32.const 0) (i32.const 200) (i32.const 1) (i32.const 208)) (i32.const 0) (i32.const 61))
    (call $expect (i32.load (i32.const 208)) (i32.const 2) (i32.const 62))
    (call $expect (i32.load16_u (i32.const 300)) (i32.const 0x6968) (i32.const 63))
    (call $expect (call $fd_read (i32.const 0) (i32.const 200) (i32.const 1) (i32.const 208)) (i32.const 0) (i32.const 64))
    (call $expect (i32.load (i32.const 208)) (i32.const 0) (i32.const 65))
    (call $expect (call $yield) (i32.const 0) (i32.const 70))"#,
    );
    assert_runs(&wasm, b"hi");
}

#[test]
fn no_files_directories_or_sockets() {
    let wasm = module(
        r#"
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $prestat_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_sync" (func $sync (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_times" (func $set_times (param i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_raise" (func $raise (param i32) (result i32)))"#,
        r#"
    (call $expect (call $prestat (i32.const 3) (i32.const 64)) (i32.const 8) (i32.const 10))
    (call $expect (call $prestat (i32.const 0) (i32.const 64)) (i32.const 8) (i32.const 11))
    (call $expect (call $prestat_name (i32.const 3) (i32.const 64) (i32.const 8)) (i32.const 8) (i32.const 12))
    (call $expect (call $prestat_name (i32.const 1) (i32.const 64) (i32.const 8)) (i32.const 54) (i32.const 13))
    ;; path_open(3, "/etc", ...) and on a stdio fd: EBADF; bad UTF-8: EILSEQ
    (i32.store (i32.const 200) (i32.const 0x6374652f))
    (call $expect (call $open (i32.const 3) (i32.const 0) (i32.const 200) (i32.const 4) (i32.const 0)
      (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 64)) (i32.const 8) (i32.const 20))
    (call $expect (call $open (i32.const 0) (i32.const 0) (i32.const 200) (i32.const 4) (i32.const 0)
      (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 64)) (i32.const 8) (i32.const 21))
    (i32.store (i32.const 200) (i32.const 0xfeff))
    (call $expect (call $open (i32.const 3) (i32.const 0) (i32.const 200) (i32.const 2) (i32.const 0)
      (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 64)) (i32.const 25) (i32.const 22))
    ;; stdio cannot seek; nothing is a file or a directory
    (call $expect (call $seek (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 64)) (i32.const 70) (i32.const 30))
    (call $expect (call $seek (i32.const 5) (i64.const 0) (i32.const 0) (i32.const 64)) (i32.const 8) (i32.const 31))
    (call $expect (call $sync (i32.const 1)) (i32.const 8) (i32.const 32))
    (call $expect (call $readdir (i32.const 0) (i32.const 64) (i32.const 64) (i64.const 0) (i32.const 128)) (i32.const 8) (i32.const 33))
    (call $expect (call $set_times (i32.const 1) (i64.const 0) (i64.const 0) (i32.const 3)) (i32.const 28) (i32.const 34))
    (call $expect (call $set_times (i32.const 1) (i64.const 0) (i64.const 0) (i32.const 1)) (i32.const 8) (i32.const 35))
    ;; sockets: stdio is not one, other fds do not exist
    (call $expect (call $accept (i32.const 1) (i32.const 0) (i32.const 64)) (i32.const 57) (i32.const 40))
    (call $expect (call $accept (i32.const 9) (i32.const 0) (i32.const 64)) (i32.const 8) (i32.const 41))
    ;; never sleeps in the host
    (call $expect (call $poll (i32.const 64) (i32.const 128) (i32.const 0) (i32.const 256)) (i32.const 28) (i32.const 50))
    (call $expect (call $poll (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 256)) (i32.const 58) (i32.const 51))
    (call $expect (call $raise (i32.const 2)) (i32.const 58) (i32.const 60))"#,
    );
    assert_runs(&wasm, b"");
}

#[test]
fn stdio_can_be_closed_and_renumbered() {
    let wasm = module(
        r#"
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $renumber (param i32 i32) (result i32)))"#,
        r#"
    (call $expect (call $close (i32.const 0)) (i32.const 0) (i32.const 10))
    (call $expect (call $close (i32.const 0)) (i32.const 8) (i32.const 11))
    (call $expect (call $renumber (i32.const 1) (i32.const 7)) (i32.const 8) (i32.const 12))
    ;; stdout moves to fd 2 (closing stderr) and `$answer` writes to fd 1...
    (call $expect (call $renumber (i32.const 1) (i32.const 2)) (i32.const 0) (i32.const 13))
    (call $expect (call $renumber (i32.const 2) (i32.const 1)) (i32.const 8) (i32.const 14))
    (call $expect (call $renumber (i32.const 2) (i32.const 2)) (i32.const 0) (i32.const 15))
    (i32.store (i32.const 3000) (i32.const 4000))
    (i32.store (i32.const 3004) (i32.const 16))
    (call $expect (call $fd_write (i32.const 1) (i32.const 3000) (i32.const 1) (i32.const 3008)) (i32.const 8) (i32.const 16))
    ;; ... so answer on fd 2 and stop
    (call $expect (call $fd_write (i32.const 2) (i32.const 3000) (i32.const 1) (i32.const 3008)) (i32.const 0) (i32.const 17))
    (call $exit (i32.const 0))"#,
    );
    assert_runs(&wasm, b"");
}

#[test]
fn writes_use_the_first_non_empty_iovec_and_a_full_stdout_fails_them() {
    let wasm = module(
        "",
        r#"
    ;; iovecs: empty, "ab", "cd": one call writes "ab" only, as wasmtime-wasi did
    (i32.store (i32.const 100) (i32.const 500))
    (i32.store (i32.const 104) (i32.const 0))
    (i32.store (i32.const 108) (i32.const 500))
    (i32.store (i32.const 112) (i32.const 2))
    (i32.store (i32.const 116) (i32.const 502))
    (i32.store (i32.const 120) (i32.const 2))
    (i32.store (i32.const 500) (i32.const 0x64636261))
    (call $expect (call $fd_write (i32.const 2) (i32.const 100) (i32.const 3) (i32.const 200)) (i32.const 0) (i32.const 10))
    (call $expect (i32.load (i32.const 200)) (i32.const 2) (i32.const 11))
    (call $expect (call $fd_write (i32.const 0) (i32.const 100) (i32.const 3) (i32.const 200)) (i32.const 8) (i32.const 12))
    (call $expect (call $fd_write (i32.const 9) (i32.const 100) (i32.const 3) (i32.const 200)) (i32.const 8) (i32.const 13))
    ;; more iovecs than a call may copy: ENOMEM, before reading them
    (call $expect (call $fd_write (i32.const 2) (i32.const 100) (i32.const 0x2000000) (i32.const 200)) (i32.const 48) (i32.const 14))
    ;; stdout: the answer, then 64 KiB more; past the limit writes are EIO
    (call $answer)
    (i32.store (i32.const 100) (i32.const 0))
    (i32.store (i32.const 104) (i32.const 65520))
    (call $expect (call $fd_write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 200)) (i32.const 0) (i32.const 20))
    (i32.store (i32.const 104) (i32.const 1))
    (call $expect (call $fd_write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 200)) (i32.const 29) (i32.const 21))
    (call $expect (call $fd_write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 200)) (i32.const 29) (i32.const 22))
    (call $exit (i32.const 0))"#,
    );
    let report = engine().run(&load(&wasm), b"", &Default::default());
    assert!(
        matches!(
            report.outcome,
            Err(RunError::OutputTooLarge { limit: 65536 })
        ),
        "{:?}",
        report.outcome
    );
    assert_eq!(report.logs, "ab");
}

/// The trap message of a module calling `fd_write` with these arguments.
fn fd_write_trap(iov_base: i64, iov_len: i64, iovs: i64, nwritten: i64) -> String {
    let wasm = module(
        "",
        &format!(
            r#"
    (i32.store (i32.const 100) (i32.const {iov_base}))
    (i32.store (i32.const 104) (i32.const {iov_len}))
    (drop (call $fd_write (i32.const 2) (i32.const {iovs}) (i32.const 1) (i32.const {nwritten})))"#
        ),
    );
    match run(&load(&wasm), b"").outcome {
        Err(RunError::Trap(message)) => message,
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn bad_pointers_trap_with_the_region() {
    assert_eq!(
        fd_write_trap(65530, 100, 100, 200),
        "Pointer out of bounds: Region { start: 65530, len: 100 }"
    );
    assert_eq!(
        fd_write_trap(0, 4, 65534, 200),
        "Pointer out of bounds: Region { start: 65534, len: 4 }"
    );
    assert_eq!(
        fd_write_trap(0, 4, 102, 200),
        "Pointer not aligned to 4: Region { start: 102, len: 4 }"
    );
    // The result pointer is checked after the write happened.
    assert_eq!(
        fd_write_trap(0, 4, 100, 65536),
        "Pointer out of bounds: Region { start: 65536, len: 4 }"
    );
}

#[test]
fn invalid_arguments_trap() {
    let wasm = module(
        r#"(import "wasi_snapshot_preview1" "clock_time_get" (func $time (param i32 i64 i32) (result i32)))"#,
        "(drop (call $time (i32.const 4) (i64.const 0) (i32.const 64)))",
    );
    let error = run(&load(&wasm), b"").outcome.unwrap_err();
    assert_eq!(
        error.to_string(),
        "rule trapped: Invalid enum value Clockid"
    );
}

#[test]
fn a_module_without_a_memory_export_cannot_call_the_host() {
    // No `memory` export at all, and one that is a global: the host finds `memory` by
    // its export index (`run::Exports`), which would also find the global.
    for memory in ["", r#"(global (export "memory") i32 (i32.const 0))"#] {
        let wasm = wat::parse_str(format!(
            r#"(module
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (memory 1)
  {memory}
  (func (export "_start") (drop (call $yield))))"#
        ))
        .unwrap();
        let error = engine()
            .run(&load_unchecked(&wasm), b"", &Default::default())
            .outcome
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "rule trapped: missing required memory export",
            "{memory}"
        );
    }
}

#[test]
fn a_start_that_is_missing_or_takes_arguments_is_not_called() {
    // Uploads refuse both; a run looks `_start` up by its export index and still
    // checks its type before calling it.
    let cases = [
        (
            r#"(module (memory (export "memory") 1) (func (export "start")))"#,
            "failed to find function export `_start`",
        ),
        (
            r#"(module (memory (export "memory") 1) (global (export "_start") i32 (i32.const 0)))"#,
            "failed to find function export `_start`",
        ),
        (
            r#"(module (memory (export "memory") 1) (func (export "_start") (param i32)))"#,
            "failed to convert function `_start` to given type",
        ),
    ];
    for (wat, expected) in cases {
        let wasm = wat::parse_str(wat).unwrap();
        let error = engine()
            .run(&load_unchecked(&wasm), b"", &Default::default())
            .outcome
            .unwrap_err();
        match error {
            RunError::Host(message) => assert!(message.starts_with(expected), "{wat}: {message}"),
            other => panic!("{wat}: {other:?}"),
        }
    }
}
