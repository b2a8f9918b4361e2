//! Throughput of the exec de-framer (goal: at least 1 GiB/s).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use whim_core::exec::{Deframer, Nonce};

fn bench(c: &mut Criterion) {
    let nonce = Nonce([9; 16]);
    // 16 MiB of command output shaped like `seq` output, framed as the shell frames it.
    let body: Vec<u8> = (0..2_000_000u32).flat_map(|i| format!("{i}\n").into_bytes()).take(16 << 20).collect();
    let stream = Deframer::encode(nonce, &body, 0);
    let mut g = c.benchmark_group("deframer");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    for chunk in [4096usize, 65536] {
        g.bench_function(format!("seq-output/{chunk}B-frames"), |b| {
            b.iter(|| {
                let mut d = Deframer::for_nonce(nonce);
                let mut n = 0usize;
                for part in stream.chunks(chunk) {
                    for ev in d.feed(part).expect("well-formed") {
                        if let whim_core::exec::DeframeEvent::Output(o) = ev {
                            n += o.len();
                        }
                    }
                }
                assert_eq!(n, body.len());
            });
        });
    }
    let random: Vec<u8> = (0..(16u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let stream = Deframer::encode(nonce, &random, 0);
    g.bench_function("random-bytes/65536B-frames", |b| {
        b.iter(|| {
            let mut d = Deframer::for_nonce(nonce);
            for part in stream.chunks(65536) {
                std::hint::black_box(d.feed(part).expect("well-formed"));
            }
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
