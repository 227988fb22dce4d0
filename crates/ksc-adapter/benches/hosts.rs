//! Reading a `ChunkAccessor.GetItemsChunk` answer of 10,000 hosts (issue 15): the general
//! path (`parse_chunk_via_value`: the body into `serde_json::Value`, then into the adapter's
//! `Value` tree, then `parse_host` on each item) against the fast path (`parse_chunk`: the
//! body straight into the records).
//!
//! Two answers in the server's wire shape (`ksc-api.md` §5, §8 A): `six_fields`, each item a
//! `params` wrapper of six fields (`HOST_FIELDS`, what the server returns for that
//! `vecFieldsToReturn`, and `KLHST_WKS_LAST_VISIBLE`, which the adapter asked for until #29), every 1,000th host Warning with a mask bit; and
//! `wide`, the same hosts with the notes' sample's other fields too (names, versions, three
//! more datetimes), as a server that ignores the field list would send them.
//!
//! Throughput is per host. Run with
//! `cargo bench -p kaspersky-security-center-client --bench hosts -- --warm-up-time 1 --measurement-time 3`.
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ksc_adapter::hosts::{parse_chunk, parse_chunk_via_value};

const HOSTS: usize = 10_000;

fn chunk(wide: bool) -> String {
    let mut items = Vec::with_capacity(HOSTS);
    for i in 0..HOSTS {
        let problem = i % 1000 == 0;
        let (status, mask) = if problem { (2, 128) } else { (0, 0) };
        let mut host = String::new();
        if wide {
            write!(
                host,
                r#""KLHST_INSTANCEID":"025ed284-389b-44c5-a9ef-{i:012}","KLHST_WKS_CPU_ARCH":2,"KLHST_WKS_CREATED":{{"type":"datetime","value":"2021-02-23T10:14:33Z"}},"KLHST_WKS_CTYPE":36871,"#
            )
            .unwrap();
        }
        write!(
            host,
            r#""KLHST_WKS_DN":"PC-{i:05}","KLHST_WKS_GROUPID":{group},"KLHST_WKS_HOSTNAME":"4328e16f-bf83-47c3-8d0b-{i:012}","KLHST_WKS_LAST_VISIBLE":{{"type":"datetime","value":"2024-05-{day:02}T{hour:02}:{min:02}:{sec:02}Z"}},"KLHST_WKS_STATUS_ID":{status},"KLHST_WKS_STATUS_MASK":{mask}"#,
            group = 5 + i % 7,
            day = 1 + i % 28,
            hour = i % 24,
            min = i % 60,
            sec = (i * 7) % 60,
        )
        .unwrap();
        if wide {
            host.push_str(
                r#","KLHST_WKS_DNSDOMAIN":"eu-west-2.compute.internal","KLHST_WKS_FQDN":"ip-172-32-34-237.eu-west-2.compute.internal","KLHST_WKS_NAG_VERSION":"12.2.0.4376","KLHST_WKS_OS_NAME":"Microsoft Windows Server 2016","KLHST_WKS_RBT_REQUIRED":false,"KLHST_WKS_RTP_AV_BASES_TIME":{"type":"datetime","value":"2021-03-19T12:30:00Z"},"KLHST_WKS_RTP_AV_VERSION":"11.5.0.590","KLHST_WKS_STATUS":29"#,
            );
        }
        items.push(format!(r#"{{"type":"params","value":{{{host}}}}}"#));
    }
    format!(r#"{{"pChunk":{{"KLCSP_ITERATOR_ARRAY":[{}]}},"PxgRetVal":{HOSTS}}}"#, items.join(","))
}

fn hosts(c: &mut Criterion) {
    for (name, wide) in [("six_fields", false), ("wide", true)] {
        let body = chunk(wide);
        let fast = parse_chunk(200, &body).unwrap();
        assert_eq!(fast.len(), HOSTS);
        assert_eq!(fast, parse_chunk_via_value(200, &body).unwrap(), "both paths read the same");
        let mut g = c.benchmark_group(format!("get_items_chunk_10k_{name}"));
        g.throughput(Throughput::Elements(HOSTS as u64));
        g.bench_function("via_value", |b| b.iter(|| parse_chunk_via_value(200, black_box(&body)).unwrap()));
        g.bench_function("direct", |b| b.iter(|| parse_chunk(200, black_box(&body)).unwrap()));
        g.finish();
    }
}

criterion_group!(benches, hosts);
criterion_main!(benches);
