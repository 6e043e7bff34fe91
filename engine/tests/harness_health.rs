//! A coordinator out of file descriptors: it counts its failures to accept, for the explorer to tell an
//! execution spoilt by the harness from a finding, and serves again once descriptors are free.
//!
//! The file-descriptor limit is per process, so this file holds a single test: it lowers the limit of its
//! own test binary only.

use std::io::{Read, Write};
use std::time::Duration;

use cloture::coordinator::Coordinator;

/// A descriptor limit that leaves this process `free` descriptors to open (one more: the descriptor that
/// lists them is closed again). Descriptors take the lowest free number and the limit bounds the number,
/// so the holes below it count.
fn limit_leaving(free: usize) -> u64 {
    let open: std::collections::HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd lists the open descriptors")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .collect();
    (0..).filter(|fd| !open.contains(fd)).nth(free).expect("descriptor numbers do not run out")
}

fn descriptor_limit() -> libc::rlimit {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit.
    let result = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(result, 0, "getrlimit: {}", std::io::Error::last_os_error());
    limit
}

fn set_descriptor_limit(limit: libc::rlimit) {
    // SAFETY: `limit` is a valid rlimit, with a soft limit no higher than the hard one.
    let result = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(result, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

#[tokio::test(flavor = "current_thread")]
async fn d4_a_coordinator_out_of_file_descriptors_counts_its_accept_failures_and_recovers() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let address = coordinator.url().strip_prefix("http://").expect("an http URL").to_string();
    assert_eq!(coordinator.accept_failures(), 0);

    // Room for a few more descriptors only. On this single-threaded runtime the coordinator accepts
    // nothing while the blocking connects below run, so the clients take every descriptor left and their
    // connections wait in the listen backlog.
    let original = descriptor_limit();
    set_descriptor_limit(libc::rlimit { rlim_cur: limit_leaving(8), rlim_max: original.rlim_max });
    let mut clients = Vec::new();
    while let Ok(client) = std::net::TcpStream::connect(&address) {
        clients.push(client);
        assert!(clients.len() < 100, "the lowered descriptor limit did not take");
    }
    assert!(!clients.is_empty(), "no connection could be made under the lowered limit");
    // The coordinator tries to accept them, with no descriptor left.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let failures = coordinator.accept_failures();
    let counted = coordinator.health().troubles();
    drop(clients);
    set_descriptor_limit(original);
    assert!(failures > 0, "a failed accept was not counted");
    assert!(counted >= failures);

    // Descriptors are free again: the coordinator serves.
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).expect("connects");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("a read timeout");
        let request = format!("GET /v1/health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).expect("writes");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("reads the answer");
        answer
    });
    let answer = tokio::time::timeout(Duration::from_secs(15), answer).await.expect("in time").expect("the client");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
