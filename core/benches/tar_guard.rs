//! Throughput of the tar guard (goal: at least 1 GiB/s) on an uncompressed 64 MiB archive:
//! four 12 MiB files and 8,000 files of 2 KiB in 100 directories.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use whim_core::archive::{ArchiveEvent, Limits, TarGuard};

fn archive() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).expect("in memory");
    };
    let big: Vec<u8> = (0..12u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for i in 0..4 {
        add(&format!("big/file-{i}.bin"), &big);
    }
    for i in 0..8_000 {
        add(&format!("src/dir-{}/file-{i}.txt", i % 100), &big[i..i + 2048]);
    }
    b.into_inner().expect("in memory")
}

fn bench(c: &mut Criterion) {
    let bytes = archive();
    let limits = Limits { entries: 20_000, ..Limits::default() };
    let mut g = c.benchmark_group("tar_guard");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    for chunk in [16usize << 10, 64 << 10] {
        g.bench_function(format!("64MiB-mixed/{}KiB-chunks", chunk >> 10), |b| {
            b.iter(|| {
                let mut guard = TarGuard::new(limits);
                let (mut data, mut end) = (0usize, false);
                for part in bytes.chunks(chunk) {
                    guard.handle_bytes(part).expect("valid archive");
                    while let Some(ev) = guard.poll_event() {
                        match ev {
                            ArchiveEvent::Data(d) => data += d.len(),
                            ArchiveEvent::End => end = true,
                            ArchiveEvent::Entry(_) => {}
                        }
                    }
                }
                guard.handle_eof().expect("complete");
                assert!(end && data == 4 * (12 << 20) + 8_000 * 2048);
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
