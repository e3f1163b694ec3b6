//! Micro-benchmarks of the message path's building blocks: parsing, subject matching and
//! the subscription index with 10k and 100k subscriptions (literal and wildcard).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nats_common::proto::{self, Parser, Side};
use nats_common::subject;
use nats_common::sublist::Sublist;

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for size in [16usize, 128, 1024] {
        let mut buf = Vec::new();
        let payload = vec![b'x'; size];
        for _ in 0..1000 {
            proto::publish(&mut buf, b"bench.subject.one", None, None, &payload);
        }
        g.throughput(Throughput::Elements(1000));
        g.bench_with_input(BenchmarkId::new("pub", size), &buf, |b, buf| {
            let p = Parser::new(Side::Client, 4096, 1 << 20);
            b.iter(|| {
                let mut pos = 0;
                while let Ok(Some((op, n))) = p.parse(&buf[pos..]) {
                    black_box(op);
                    pos += n;
                }
            })
        });
    }
    let mut buf = Vec::new();
    for _ in 0..1000 {
        proto::msg(
            &mut buf,
            b"bench.subject.one",
            b"12",
            Some(b"_INBOX.abc.def"),
            None,
            b"hello world",
        );
    }
    g.bench_function("msg_client_side", |b| {
        let p = Parser::new(Side::Server, 4096, usize::MAX);
        b.iter(|| {
            let mut pos = 0;
            while let Ok(Some((op, n))) = p.parse(&buf[pos..]) {
                black_box(op);
                pos += n;
            }
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let payload = vec![b'x'; 128];
    let mut out = Vec::with_capacity(1 << 20);
    c.bench_function("encode_msg_128", |b| {
        b.iter(|| {
            out.clear();
            for _ in 0..1000 {
                proto::msg(&mut out, b"bench.subject.one", b"12", None, None, &payload);
            }
            black_box(out.len())
        })
    });
}

fn subjects(c: &mut Criterion) {
    c.bench_function("subject_matches", |b| {
        b.iter(|| {
            black_box(subject::matches(
                black_box(b"foo.*.bar.>"),
                black_box(b"foo.x.bar.baz.q"),
            ))
        })
    });
    c.bench_function("subject_valid", |b| {
        b.iter(|| {
            black_box(subject::is_valid_subject(black_box(
                b"orders.eu.new.priority",
            )))
        })
    });
}

/// An index with `n` subscriptions: 90% literal `a.<i>.b.<j>`, 10% wildcards.
fn index(n: usize) -> Sublist<usize> {
    let mut s = Sublist::new();
    for i in 0..n {
        let subj = match i % 10 {
            0 => format!("a.{}.*.{}", i % 1000, i),
            1 => format!("a.{}.>", i),
            _ => format!("a.{}.b.{}", i % 1000, i),
        };
        s.insert(subj.as_bytes(), None, i);
    }
    s
}

fn sublist(c: &mut Criterion) {
    let mut g = c.benchmark_group("sublist");
    for n in [10_000usize, 100_000] {
        let s = index(n);
        // Distinct subjects each time, so the shared cache cannot answer.
        let subjects: Vec<String> = (0..4096)
            .map(|i| format!("a.{}.b.{}", i % 1000, i * 7))
            .collect();
        let mut k = 0;
        g.bench_function(BenchmarkId::new("match_uncached", n), |b| {
            b.iter(|| {
                k = (k + 1) % subjects.len();
                black_box(s.match_subject(subjects[k].as_bytes()).psubs.len())
            })
        });
        g.bench_function(BenchmarkId::new("match_cached", n), |b| {
            b.iter(|| black_box(s.match_subject(b"a.7.b.7007").psubs.len()))
        });
        let mut m = index(n);
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("insert_remove", n), |b| {
            b.iter(|| {
                i += 1;
                let subj = format!("z.{}.y", i % 5000);
                m.insert(subj.as_bytes(), None, usize::MAX - i);
                m.remove(subj.as_bytes(), None, &(usize::MAX - i));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parse, encode, subjects, sublist);
criterion_main!(benches);
