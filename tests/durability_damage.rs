//! A damaged buffer does not stop the gateway: bytes flipped inside one segment, another cut in
//! the middle of a record, the last one ending in a torn write. `sluice buffer inspect` names
//! the damage; `sluice run` moves the damaged segments aside, keeps their valid records, says
//! what it did, serves, and delivers every record that survived.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use support::gateway::{GatewayProcess, Ports, read_archive, sluice_command};

/// Records a segment holds: (sequence number, offset of its header, payload length).
fn records_of(segment: &Path) -> Vec<(u64, usize, usize)> {
    let bytes = std::fs::read(segment).unwrap();
    assert_eq!(&bytes[..8], b"SLUICELG", "{}", segment.display());
    let mut records = Vec::new();
    let mut offset = 16;
    while offset + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        let seq = u64::from_le_bytes(bytes[offset + 8..offset + 16].try_into().unwrap());
        records.push((seq, offset, len));
        offset += 16 + len;
    }
    assert_eq!(offset, bytes.len(), "{} is whole", segment.display());
    records
}

fn segments(buffer: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(buffer)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    segments.sort();
    segments
}

/// POSTs one OTLP/HTTP JSON log record with attribute `seq`; returns the HTTP status.
fn send(port: u16, seq: u64) -> u16 {
    let body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1764633600000000000",
        "body": {"stringValue": format!("record {seq}")},
        "attributes": [{"key": "seq", "value": {"intValue": seq.to_string()}}],
    }]}]}]})
    .to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
}

fn config(ports: &mut Ports, sink: &str) -> (String, u16) {
    let http = ports.tcp();
    let dead = support::free_port();
    let config = format!(
        r#"
shutdown_timeout = "1s"

[buffer]
segment_bytes = 4096
max_bytes = 1048576

[receivers.otlp]
type = "otlp"
http = "127.0.0.1:{http}"

[pipelines.logs]
receivers = ["otlp"]
signals = ["logs"]
sinks = ["{sink}"]

# Down for the whole first run: the buffer keeps everything.
[sinks.backend]
type = "otlp"
endpoint = "http://127.0.0.1:{dead}"
retry_initial = "100ms"
retry_max = "200ms"

[sinks.archive]
type = "parquet"
path = "./archive"
max_file_age = "200ms"
"#
    );
    (config, http)
}

#[test]
fn a_damaged_buffer_is_repaired_reported_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = dir.path().join("data/buffer");

    // First run: every record acknowledged lands in the buffer, none leaves it.
    let (gateway, http) = GatewayProcess::start(dir.path(), |ports| config(ports, "backend"));
    let sent: Vec<u64> = (1..=80).collect();
    for &seq in &sent {
        assert_eq!(send(http, seq), 200, "record {seq}");
    }
    gateway.stop();

    let segments = segments(&buffer);
    assert!(
        segments.len() >= 4,
        "small segments: {} of them",
        segments.len()
    );
    let mut lost = BTreeSet::new();
    // Flip a byte inside the payload of the third record of the second segment.
    let flipped = &segments[1];
    let (seq, offset, len) = records_of(flipped)[2];
    let mut bytes = std::fs::read(flipped).unwrap();
    bytes[offset + 16 + len / 2] ^= 0x5a;
    std::fs::write(flipped, &bytes).unwrap();
    lost.insert(seq);
    // Cut the third segment in the middle of its last record.
    let cut = &segments[2];
    let &(seq, offset, len) = records_of(cut).last().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(cut).unwrap();
    file.set_len((offset + 16 + len / 2) as u64).unwrap();
    lost.insert(seq);
    // The last segment ends in a torn write.
    let last = segments.last().unwrap();
    let &(seq, offset, _) = records_of(last).last().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    file.set_len((offset + 7) as u64).unwrap();
    lost.insert(seq);

    // Inspect names each damaged segment and exits with 1.
    let inspect = sluice_command()
        .args(["buffer", "inspect"])
        .arg(&buffer)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&inspect.stdout);
    assert_eq!(inspect.status.code(), Some(1), "{report}");
    for damaged in [flipped, cut, last] {
        let name = damaged.file_name().unwrap().to_string_lossy();
        let line = report
            .lines()
            .find(|line| line.contains(&*name))
            .unwrap_or_else(|| panic!("{name} not in the report:\n{report}"));
        assert!(line.contains("DAMAGED"), "{line}");
    }
    assert!(report.contains("backend"), "the cursor is shown:\n{report}");

    // Second run: the archive is a new sink, so it gets everything the buffer kept.
    let (gateway, http) = GatewayProcess::start(dir.path(), |ports| config(ports, "archive"));
    assert_eq!(send(http, 1000), 200, "the repaired gateway serves");
    let stopped = gateway.stop();
    for moved in [flipped, cut] {
        let name = moved.file_name().unwrap().to_string_lossy();
        assert!(
            stopped
                .stderr
                .lines()
                .any(|line| line.contains("buffer repaired")
                    && line.contains(&*name)
                    && line.contains("moved aside")),
            "{name} reported as moved aside:\n{}",
            stopped.stderr
        );
        assert!(
            buffer.join("damaged").join(&*name).exists(),
            "{name} kept in damaged/"
        );
    }
    assert!(
        stopped.stderr.contains("cut an unfinished write"),
        "the torn tail reported:\n{}",
        stopped.stderr
    );

    let read = read_archive(
        &dir.path().join("archive"),
        json!({"seqs": "SELECT CAST(attributes['seq'] AS BIGINT) AS seq FROM {logs} ORDER BY seq"}),
    );
    let archived: Vec<u64> = read["queries"]["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["seq"].as_u64().unwrap())
        .collect();
    let mut expected: Vec<u64> = sent
        .iter()
        .copied()
        .filter(|seq| !lost.contains(seq))
        .collect();
    expected.push(1000);
    assert_eq!(
        archived, expected,
        "every record but the three damaged ones ({lost:?}), once each"
    );

    // Inspect now finds a clean buffer and lists what was moved aside.
    let inspect = sluice_command()
        .args(["buffer", "inspect"])
        .arg(&buffer)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&inspect.stdout);
    assert!(inspect.status.success(), "{report}");
    assert!(report.contains("moved aside (damaged/): 2"), "{report}");
}
