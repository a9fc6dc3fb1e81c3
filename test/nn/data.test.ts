import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  batches,
  CIFAR10_FILES,
  CIFAR10_RECORD_BYTES,
  channelStats,
  classCounts,
  type Dataset,
  datasetFromBytes,
  defaultDataSearchDirs,
  downloadFashionMnist,
  encodeIdx,
  FASHION_MNIST_MD5,
  FASHION_MNIST_NORMALIZATION,
  findCifar10,
  findFashionMnist,
  loadCifar10,
  loadFashionMnist,
  loadFashionMnistSample,
  readIdx,
  split,
  subset,
  writeIdx,
} from '../../src/nn/data/index.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'privml-data-test-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));
let tmpCount = 0;
function tmp(): string {
  const d = join(tmpRoot, String(tmpCount++));
  mkdirSync(d, { recursive: true });
  return d;
}

/** Deterministic pseudo-random bytes. */
function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Write a tiny Fashion-MNIST-shaped test split (n images whose first pixel = label) into dir. */
function writeFakeFashion(dir: string, n: number, splitName: 'train' | 'test' = 'test', offset = 0): void {
  const px = new Uint8Array(n * 784);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = (i + offset) % 10;
    px[i * 784] = 25 * labels[i]!;
  }
  const p = splitName === 'test' ? 't10k' : 'train';
  writeIdx(join(dir, `${p}-images-idx3-ubyte.gz`), [n, 28, 28], px, { gzip: true });
  writeIdx(join(dir, `${p}-labels-idx1-ubyte.gz`), [n], labels, { gzip: true });
}

/** A small synthetic Dataset where image i is filled with value i and label i % classes. */
function toyDataset(n: number, shape: [number, number, number] = [2, 2, 2]): Dataset {
  const size = shape[0] * shape[1] * shape[2];
  const images = new Float32Array(n * size);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    images.fill(i, i * size, (i + 1) * size);
    labels[i] = i % 3;
  }
  return { name: 'toy', images, labels, n, shape, classes: ['a', 'b', 'c'] };
}

/** Image ids (value of the first element) of a batch/dataset's images. */
function ids(x: Float32Array, n: number, size: number): number[] {
  return Array.from({ length: n }, (_, j) => x[j * size]!);
}

describe('IDX', () => {
  for (const gzip of [false, true]) {
    test(`round trip (${gzip ? 'gzip' : 'raw'})`, () => {
      const dir = tmp();
      const data = bytes(3 * 5 * 7, 3);
      const p = join(dir, 'x.idx');
      writeIdx(p, [3, 5, 7], data, { gzip });
      const raw = readFileSync(p);
      assert.equal(raw[0] === 0x1f && raw[1] === 0x8b, gzip);
      const back = readIdx(p);
      assert.deepEqual(back.dims, [3, 5, 7]);
      assert.deepEqual(back.data, data);
      assert.deepEqual(readdirSync(dir), ['x.idx'], 'no temp files left behind');
    });
  }

  test('header layout is big-endian with dtype 0x08', () => {
    const b = encodeIdx([2, 258], new Uint8Array(516));
    assert.deepEqual(Array.from(b.subarray(0, 12)), [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 1, 2]);
  });

  test('truncated raw file gives a one-line error naming file and sizes', () => {
    const dir = tmp();
    const p = join(dir, 't10k-images-idx3-ubyte');
    const full = encodeIdx([10, 28, 28], bytes(7840));
    writeFileSync(p, full.subarray(0, 1000));
    assert.throws(
      () => readIdx(p),
      (e: Error) => {
        assert.equal(e.message, `${p}: truncated IDX file (expected 7856 bytes, got 1000)`);
        return true;
      },
    );
  });

  test('truncated gzip, bad magic, bad dtype, trailing data and missing file are one-line errors', () => {
    const dir = tmp();
    const gz = gzipSync(encodeIdx([100], bytes(100)));
    const cases: [string, Uint8Array | undefined, RegExp][] = [
      ['trunc.gz', gz.subarray(0, gz.length - 10), /corrupt or truncated gzip data/],
      ['trunc-header', new Uint8Array([0, 0, 8, 3, 0, 0]), /truncated IDX file \(header needs 16 bytes, got 6\)/],
      ['magic', new Uint8Array([1, 2, 8, 1, 0, 0, 0, 0]), /not an IDX file \(bad magic 0x01 0x02/],
      ['dtype', new Uint8Array([0, 0, 0x0d, 1, 0, 0, 0, 0]), /unsupported IDX dtype 0x0d/],
      ['trailing', new Uint8Array([0, 0, 8, 1, 0, 0, 0, 1, 7, 7]), /trailing data \(expected 9 bytes, got 10\)/],
      ['missing', undefined, /cannot read IDX file/],
    ];
    for (const [name, content, re] of cases) {
      const p = join(dir, name);
      if (content) writeFileSync(p, content);
      assert.throws(
        () => readIdx(p),
        (e: Error) => {
          assert.match(e.message, re);
          assert.ok(e.message.startsWith(`${p}: `), e.message);
          assert.ok(!e.message.includes('\n'), 'one line');
          return true;
        },
      );
    }
  });

  test('a failed write leaves neither a temp file nor a changed target', () => {
    const dir = tmp();
    mkdirSync(join(dir, 'x.idx')); // the target is a directory: the rename fails
    assert.throws(() => writeIdx(join(dir, 'x.idx'), [2], new Uint8Array(2)));
    assert.deepEqual(readdirSync(dir), ['x.idx']);
    assert.deepEqual(readdirSync(join(dir, 'x.idx')), []);
  });

  test('writeIdx rejects dims that do not match the data', () => {
    assert.throws(() => writeIdx(join(tmp(), 'bad'), [2, 3], new Uint8Array(5)), /need 6 bytes, data has 5/);
  });
});

describe('Dataset helpers', () => {
  test('datasetFromBytes scales to [0,1] and checks labels', () => {
    const ds = datasetFromBytes('t', new Uint8Array([0, 255, 51, 102]), new Uint8Array([0, 1]), [1, 1, 2], ['a', 'b']);
    assert.deepEqual(Array.from(ds.images), [0, 1, 0.2, 0.4].map(Math.fround));
    assert.throws(() => datasetFromBytes('t', new Uint8Array(2), new Uint8Array([2]), [1, 1, 2], ['a', 'b']), /label 2 of example 0 is out of range/);
  });

  test('subset is a view of the right examples', () => {
    const ds = toyDataset(10);
    const s = subset(ds, 3, 4);
    assert.equal(s.n, 4);
    assert.deepEqual(ids(s.images, s.n, 8), [3, 4, 5, 6]);
    assert.deepEqual(Array.from(s.labels), [0, 1, 2, 0]);
    assert.throws(() => subset(ds, 8, 3), /outside 0\.\.10/);
  });

  test('split is a deterministic partition', () => {
    const ds = toyDataset(101);
    const { a, b } = split(ds, 0.3, 42);
    assert.equal(a.n, 30);
    assert.equal(b.n, 71);
    const idA = ids(a.images, a.n, 8);
    const idB = ids(b.images, b.n, 8);
    assert.deepEqual(
      [...idA, ...idB].sort((x, y) => x - y),
      Array.from({ length: 101 }, (_, i) => i),
    );
    assert.deepEqual(
      Array.from(a.labels),
      idA.map((i) => i % 3),
      'labels follow their images',
    );
    assert.notDeepEqual(
      idA,
      Array.from({ length: 30 }, (_, i) => i),
      'actually shuffled',
    );
    const again = split(ds, 0.3, 42);
    assert.deepEqual(ids(again.a.images, again.a.n, 8), idA);
    const other = split(ds, 0.3, 43);
    assert.notDeepEqual(ids(other.a.images, other.a.n, 8), idA, 'seed matters');
  });

  test('batches cover every example exactly once, in order or shuffled deterministically', () => {
    const ds = toyDataset(23);
    const inOrder = [...batches(ds, 5)];
    assert.deepEqual(
      inOrder.map((b) => b.n),
      [5, 5, 5, 5, 3],
    );
    assert.deepEqual(
      inOrder.flatMap((b) => ids(b.x, b.n, 8)),
      Array.from({ length: 23 }, (_, i) => i),
    );
    for (const b of inOrder) assert.equal(b.x.length, b.n * 8);

    const run = (seed: number) => [...batches(ds, 4, { shuffle: true, seed })];
    const s1 = run(7);
    const order = s1.flatMap((b) => ids(b.x, b.n, 8));
    assert.deepEqual(
      [...order].sort((x, y) => x - y),
      Array.from({ length: 23 }, (_, i) => i),
    );
    assert.deepEqual(
      s1.flatMap((b) => Array.from(b.y)),
      order.map((i) => i % 3),
      'labels follow images',
    );
    assert.notDeepEqual(
      order,
      Array.from({ length: 23 }, (_, i) => i),
    );
    assert.deepEqual(
      run(7).flatMap((b) => ids(b.x, b.n, 8)),
      order,
      'same seed, same order',
    );
    assert.notDeepEqual(
      run(8).flatMap((b) => ids(b.x, b.n, 8)),
      order,
    );

    assert.deepEqual(
      [...batches(ds, 5, { dropLast: true })].map((b) => b.n),
      [5, 5, 5, 5],
    );
    assert.throws(() => batches(ds, 0).next(), /batch size must be a positive integer/);
  });

  test('normalisation uses per-channel mean/std and channelStats inverts it', () => {
    const px = new Uint8Array(2 * 2 * 4);
    for (let i = 0; i < px.length; i++) px[i] = (i * 37) % 256;
    const ds = datasetFromBytes('t', px, new Uint8Array([0, 1]), [2, 2, 2], ['a', 'b']);
    const stats = channelStats(ds);
    const norm = datasetFromBytes('t', px, new Uint8Array([0, 1]), [2, 2, 2], ['a', 'b'], stats);
    const after = channelStats(norm);
    for (let c = 0; c < 2; c++) {
      assert.ok(Math.abs(after.mean[c]!) < 1e-6);
      assert.ok(Math.abs(after.std[c]! - 1) < 1e-5);
    }
    // channel 1 of image 0 is elements 4..7
    assert.ok(Math.abs(norm.images[5]! - (px[5]! / 255 - stats.mean[1]!) / stats.std[1]!) < 1e-6);
    assert.deepEqual(norm.normalization, stats);
  });
});

describe('CIFAR-10', () => {
  /** Write a batch file of n records: label (seed+i)%10, plane c of record i filled with 10*c + i. */
  function writeBatch(path: string, n: number, seed: number): void {
    const b = new Uint8Array(n * CIFAR10_RECORD_BYTES);
    for (let i = 0; i < n; i++) {
      const off = i * CIFAR10_RECORD_BYTES;
      b[off] = (seed + i) % 10;
      for (let c = 0; c < 3; c++) b.fill(10 * c + i + seed, off + 1 + c * 1024, off + 1 + (c + 1) * 1024);
      b[off + 1 + 1024 + 33] = 255; // green plane, row 1, column 1
    }
    writeFileSync(path, b);
  }

  test('loads records into NCHW with labels, across batch files and with limit', () => {
    const root = tmp();
    const dir = join(root, 'cifar-10-batches-bin');
    mkdirSync(dir);
    CIFAR10_FILES.train.forEach((f, k) => writeBatch(join(dir, f), 3, 100 + 3 * k));
    writeBatch(join(dir, 'test_batch.bin'), 4, 0);

    assert.equal(findCifar10({ searchDirs: [tmp(), root] }), dir, 'finds the cifar-10-batches-bin subdir');
    const test = loadCifar10({ split: 'test', searchDirs: [root] });
    assert.deepEqual(test.shape, [3, 32, 32]);
    assert.equal(test.n, 4);
    assert.deepEqual(Array.from(test.labels), [0, 1, 2, 3]);
    for (let i = 0; i < 4; i++) {
      for (let c = 0; c < 3; c++) {
        const base = (i * 3 + c) * 1024;
        assert.equal(test.images[base], Math.fround((10 * c + i) / 255), `image ${i} channel ${c}`);
        assert.equal(test.images[base + 1023], Math.fround((10 * c + i) / 255));
      }
      assert.equal(test.images[(i * 3 + 1) * 1024 + 33], 1, 'G plane pixel (1,1)');
    }

    const train = loadCifar10({ split: 'train', dir, limit: 7 });
    assert.equal(train.n, 7);
    assert.deepEqual(Array.from(train.labels), [0, 1, 2, 3, 4, 5, 6]);
    // example 4 is record 1 of data_batch_2 (seed 103): red plane value 103 + 1
    assert.equal(train.images[4 * 3072], Math.fround(104 / 255));
    assert.equal(loadCifar10({ split: 'train', dir }).n, 15);
  });

  test('wrong file size and missing data give errors naming the file', () => {
    const dir = tmp();
    const p = join(dir, 'test_batch.bin');
    writeFileSync(p, new Uint8Array(CIFAR10_RECORD_BYTES * 2 - 5));
    assert.throws(
      () => loadCifar10({ split: 'test', dir }),
      (e: Error) => {
        assert.ok(e.message.startsWith(`${p}: bad CIFAR-10 batch size 6141 bytes`), e.message);
        return true;
      },
    );
    assert.throws(() => loadCifar10({ split: 'train', searchDirs: [dir] }), /CIFAR-10 train split not found \(looked in: /);
  });
});

describe('Fashion-MNIST', () => {
  test('committed sample: 1000 images of [1,28,28] in [0,1]', () => {
    const ds = loadFashionMnistSample();
    assert.equal(ds.n, 1000);
    assert.deepEqual(ds.shape, [1, 28, 28]);
    assert.equal(ds.images.length, 1000 * 784);
    assert.equal(ds.labels.length, 1000);
    let min = Infinity;
    let max = -Infinity;
    for (const v of ds.images) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    assert.equal(min, 0);
    assert.equal(max, 1);
    assert.equal(ds.classes[9], 'Ankle boot');
    // The official test set starts with these labels.
    assert.deepEqual(Array.from(ds.labels.subarray(0, 10)), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    assert.ok(
      classCounts(ds).every((c) => c >= 80 && c <= 120),
      'roughly balanced',
    );
    const norm = loadFashionMnistSample({ limit: 10, normalize: FASHION_MNIST_NORMALIZATION });
    assert.equal(norm.n, 10);
    assert.equal(norm.images[0], Math.fround((ds.images[0]! - 0.286) / 0.353));
  });

  test('search order respects the list and split requirements', () => {
    const empty = tmp();
    const first = tmp();
    const second = tmp();
    const trainOnly = tmp();
    writeFakeFashion(first, 3, 'test', 0);
    writeFakeFashion(second, 5, 'test', 1);
    writeFakeFashion(second, 2, 'train');
    writeFakeFashion(trainOnly, 4, 'train');

    assert.equal(findFashionMnist({ searchDirs: [empty, first, second], split: 'test' }), first);
    assert.equal(findFashionMnist({ searchDirs: [empty, second, first], split: 'test' }), second);
    assert.equal(findFashionMnist({ searchDirs: [first, second] }), second, 'both splits needed by default');
    assert.equal(findFashionMnist({ searchDirs: [trainOnly, second], split: 'train' }), trainOnly);
    assert.equal(findFashionMnist({ searchDirs: [empty] }), undefined);

    const ds = loadFashionMnist({ split: 'test', searchDirs: [empty, second, first] });
    assert.equal(ds.n, 5);
    assert.deepEqual(Array.from(ds.labels), [1, 2, 3, 4, 5]);
    assert.equal(ds.images[784], Math.fround(50 / 255), 'first pixel of image 1 = 25*label');
    assert.equal(loadFashionMnist({ split: 'test', dir: second, limit: 2 }).n, 2);
  });

  test('raw (un-gzipped) files are found too', () => {
    const dir = tmp();
    writeIdx(join(dir, 't10k-images-idx3-ubyte'), [2, 28, 28], new Uint8Array(2 * 784));
    writeIdx(join(dir, 't10k-labels-idx1-ubyte'), [2], new Uint8Array([3, 4]));
    assert.deepEqual(Array.from(loadFashionMnist({ split: 'test', dir }).labels), [3, 4]);
  });

  test('not found lists the directories and how to get the data', () => {
    const a = tmp();
    const b = join(tmpRoot, 'does-not-exist');
    assert.throws(
      () => loadFashionMnist({ split: 'train', searchDirs: [a, b] }),
      (e: Error) => {
        assert.equal(
          e.message,
          `Fashion-MNIST train split not found (looked in: ${a}, ${b}); ` +
            'apt-get install dataset-fashion-mnist, set PRIVML_DATA, or run `privml data download fashion-mnist`',
        );
        return true;
      },
    );
    assert.throws(() => loadFashionMnist({ split: 'test', dir: a }), /t10k-images-idx3-ubyte\.gz and t10k-labels-idx1-ubyte\.gz not found/);
  });

  test('mismatched image/label counts are rejected', () => {
    const dir = tmp();
    writeIdx(join(dir, 't10k-images-idx3-ubyte.gz'), [2, 28, 28], new Uint8Array(2 * 784), { gzip: true });
    writeIdx(join(dir, 't10k-labels-idx1-ubyte.gz'), [3], new Uint8Array(3), { gzip: true });
    assert.throws(() => loadFashionMnist({ split: 'test', dir }), /3 labels but .* has 2 images/);
  });

  test('defaultDataSearchDirs builds the documented order from explicit values', () => {
    assert.deepEqual(defaultDataSearchDirs({ PRIVML_DATA: '/data' }, '/home/u'), [
      '/data',
      '/data/fashion-mnist',
      '/usr/share/datasets/fashion-mnist',
      '/home/u/.cache/privml/fashion-mnist',
    ]);
    assert.deepEqual(defaultDataSearchDirs({}, '/home/u'), ['/usr/share/datasets/fashion-mnist', '/home/u/.cache/privml/fashion-mnist']);
    assert.deepEqual(defaultDataSearchDirs({ PRIVML_DATA: '/d' }, '/h', 'cifar10'), ['/d', '/d/cifar-10-batches-bin', '/h/.cache/privml/cifar-10-batches-bin']);
  });

  const realDir = '/usr/share/datasets/fashion-mnist';
  test('real test split loads (10,000 images)', { skip: !existsSync(realDir) && `${realDir} not installed` }, () => {
    const ds = loadFashionMnist({ split: 'test', searchDirs: [realDir] });
    assert.equal(ds.n, 10000);
    assert.deepEqual(ds.shape, [1, 28, 28]);
    assert.deepEqual(classCounts(ds), new Array(10).fill(1000));
    const sample = loadFashionMnistSample();
    assert.deepEqual(sample.images, ds.images.subarray(0, 1000 * 784), 'sample = first 1,000 test images');
    assert.deepEqual(sample.labels, ds.labels.subarray(0, 1000));
  });
});

describe('download', () => {
  const files = Object.keys(FASHION_MNIST_MD5);
  const payload = (f: string) => gzipSync(encodeIdx([4], bytes(4, f.length)));
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

  /** A fetch serving `serve(url)` bytes (or 404 when undefined), recording requested URLs. */
  function fakeFetch(serve: (url: string) => Uint8Array | undefined, log: string[]): typeof fetch {
    return (async (input: string | URL | Request) => {
      const url = String(input);
      log.push(url);
      const body = serve(url);
      if (!body) return new Response('nope', { status: 404, statusText: 'Not Found' });
      return new Response(new Uint8Array(body), { status: 200, headers: { 'content-length': String(body.length) } });
    }) as typeof fetch;
  }

  test('success path: verified, atomic, progress reported, existing files skipped', async () => {
    const dest = join(tmp(), 'cache', 'fashion-mnist');
    const checksums = Object.fromEntries(files.map((f, i) => [f, i % 2 ? sha(payload(f)) : md5(payload(f))]));
    const log: string[] = [];
    const progress: string[] = [];
    const fetchImpl = fakeFetch((u) => payload(u.slice(u.lastIndexOf('/') + 1)), log);
    const res = await downloadFashionMnist(dest, {
      fetchImpl,
      checksums,
      baseUrls: ['https://mirror.example/fm/'],
      onProgress: (p) => progress.push(`${p.file}:${p.received}/${p.total}`),
    });
    assert.deepEqual(res.downloaded.sort(), [...files].sort());
    assert.deepEqual(readdirSync(dest).sort(), [...files].sort(), 'no temp files left');
    for (const f of files) assert.deepEqual(new Uint8Array(readFileSync(join(dest, f))), new Uint8Array(payload(f)));
    assert.ok(log.every((u) => u.startsWith('https://mirror.example/fm/')));
    assert.ok(progress.includes(`t10k-labels-idx1-ubyte.gz:${payload('t10k-labels-idx1-ubyte.gz').length}/${payload('t10k-labels-idx1-ubyte.gz').length}`));
    // The downloaded files are readable IDX.
    assert.deepEqual(readIdx(join(dest, files[0]!)).dims, [4]);

    const again = await downloadFashionMnist(dest, { fetchImpl, checksums, baseUrls: ['https://mirror.example/fm/'] });
    assert.deepEqual(again.skipped.sort(), [...files].sort());
    assert.equal(log.length, 4, 'nothing fetched the second time');
  });

  test('falls back to the next mirror on HTTP errors', async () => {
    const dest = tmp();
    const checksums = Object.fromEntries(files.map((f) => [f, sha(payload(f))]));
    const log: string[] = [];
    const fetchImpl = fakeFetch((u) => (u.startsWith('https://b/') ? payload(u.slice(u.lastIndexOf('/') + 1)) : undefined), log);
    const res = await downloadFashionMnist(dest, { fetchImpl, checksums, baseUrls: ['https://a/', 'https://b/'] });
    assert.equal(res.downloaded.length, 4);
    assert.equal(log.length, 8);
  });

  test('checksum mismatch is an error and writes nothing', async () => {
    const dest = tmp();
    const fetchImpl = fakeFetch(() => bytes(100), []);
    await assert.rejects(
      () => downloadFashionMnist(dest, { fetchImpl }),
      (e: Error) => {
        assert.match(
          e.message,
          /^train-images-idx3-ubyte\.gz: download failed \(.*md5 checksum mismatch \(expected 8d4fb7e6c68d591d4c3dfef9ec88bf0d, got [0-9a-f]{32}\)/,
        );
        assert.ok(!e.message.includes('\n'));
        return true;
      },
    );
    assert.deepEqual(readdirSync(dest), []);
  });

  test('uses the official mirrors by default', async () => {
    const log: string[] = [];
    await assert.rejects(() => downloadFashionMnist(tmp(), { fetchImpl: fakeFetch(() => undefined, log) }), /HTTP 404/);
    assert.deepEqual(log, [
      'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz',
      'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/train-images-idx3-ubyte.gz',
    ]);
  });
});
