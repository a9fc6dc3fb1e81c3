import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { decodeModel, saveModel } from '../../src/onnx/proto.js';
import { buildZoo } from '../../src/onnx/zoo/index.js';
import type { ProteusKey } from '../../src/proteus/index.js';
import { corpusStats, obfuscate, ortLoads, readKey, readManifest, recover, writeKey } from '../../src/proteus/index.js';
import { SMALL } from './configs.js';

const run = promisify(execFile);
const stats = corpusStats();
const tmp = mkdtempSync(join(tmpdir(), 'privml-proteus-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

/** Member files of a group, as [name, bytes]. */
function members(dir: string, key: ProteusKey, g: number): [string, Uint8Array][] {
  return key.groups[g]!.members.map((f) => [f, readFileSync(join(dir, f))]);
}

test('bundle leaks nothing but graphs: names, headers, metadata, file order, opsets and file sizes are uniform', async () => {
  const model = buildZoo('resnet20', {});
  model.docString = 'secret doc';
  model.metadata = { author: 'owner' };
  model.producerName = 'pytorch';
  model.graph.nodes[3]!.docString = 'node doc';
  const dir = join(tmp, 'leak');
  // Per group: is the real member strictly the smallest or the largest file (ties at its size hide it)?
  const extremes: boolean[] = [];
  const realPositions: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    const { key, manifest } = await obfuscate(model, { k: 9, size: 12, stats, outDir: join(dir, String(rep)), reference: false });
    const d = join(dir, String(rep));
    assert.deepEqual(readdirSync(d).sort(), ['manifest.json', ...manifest.members].sort());
    const written = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')) as { sha256: Record<string, string> };
    assert.deepEqual(Object.keys(written).sort(), ['bundleId', 'format', 'members', 'sha256']);
    // Member hashes in name order (not group order), each the file's own.
    assert.deepEqual(Object.keys(written.sha256), manifest.members);
    for (const f of manifest.members) assert.equal(written.sha256[f], key.hashes[f]);
    for (let g = 0; g < key.groups.length; g++) {
      const ms = members(d, key, g);
      const realIdx = ms.findIndex(([f]) => f === key.groups[g]!.real);
      realPositions.push(manifest.members.indexOf(key.groups[g]!.real));
      const sizes = ms.map(([, b]) => b.length);
      const smaller = sizes.filter((s) => s < sizes[realIdx]!).length;
      const larger = sizes.filter((s) => s > sizes[realIdx]!).length;
      extremes.push((smaller === 0 && larger > 0) || (larger === 0 && smaller > 0));
      for (const [f, bytes] of ms) {
        const m = decodeModel(bytes, f);
        const text = Buffer.from(bytes).toString('latin1');
        for (const secret of ['secret doc', 'pytorch', 'node doc', 'resnet', '.weight', 'running_', 'sentinel', '.part'])
          assert.ok(!text.includes(secret), `${f} contains '${secret}'`);
        assert.equal(m.producerName, 'privml');
        assert.equal(m.producerVersion, '0.1.0');
        assert.equal(m.docString, '');
        assert.deepEqual(m.metadata, {});
        assert.equal(m.graph.name, 'member');
        assert.deepEqual(m.opsetImports, [{ domain: '', version: 17 }]);
        assert.equal(m.graph.valueInfo.length, 0);
        // Names follow one positional scheme for real and fake alike.
        m.graph.inputs.forEach((v, i) => assert.equal(v.name, `x${i}`));
        m.graph.outputs.forEach((v, i) => assert.equal(v.name, `y${i}`));
        m.graph.nodes.forEach((n, i) => {
          assert.equal(n.name, `n${i}`);
          assert.deepEqual(Object.keys(n.attrs), Object.keys(n.attrs).sort());
          for (const o of n.outputs) assert.match(o, /^(v\d+|y\d+)$/);
        });
        [...m.graph.initializers.keys()].forEach((w, i) => assert.equal(w, `w${i}`));
      }
    }
  }
  // The real member's place in the file order is spread out, and its file size is not strictly the
  // smallest or largest of its group every time (sentinels of the same widths tie with it).
  assert.ok(new Set(realPositions).size > realPositions.length / 2, `positions ${realPositions}`);
  assert.ok(
    extremes.some((e) => !e),
    `the real member's file is strictly the smallest or largest in all ${extremes.length} groups`,
  );
});

test('CLI round trip: obfuscate → optimize in a separate process → recover equals the original; tampering and missing members are detected', async () => {
  const model = buildZoo('mobilenetv2', SMALL.mobilenetv2!);
  const src = join(tmp, 'model.onnx');
  saveModel(model, src);
  const cli = [join(import.meta.dirname, '..', '..', 'bin', 'privml.js'), 'proteus'];
  const bundle = join(tmp, 'bundle');
  const opt = join(tmp, 'opt');
  const keyPath = join(tmp, 'owner.key');
  const out = join(tmp, 'recovered.onnx');
  const ob = await run('node', [...cli, 'obfuscate', src, '-k', '3', '--size', '16', '-o', bundle, '--key', keyPath, '--json']);
  const summary = JSON.parse(ob.stdout) as { subgraphs: number; members: number };
  assert.equal(summary.members, 4 * summary.subgraphs);
  assert.equal(statSync(keyPath).mode & 0o077, 0, 'key readable by others');
  await run('node', [...cli, 'optimize', bundle, '-o', opt, '--json']);
  // The optimizer party wrote FusedConv into some members: it really optimized them.
  const fused = readManifest(opt).members.some((f) => decodeModel(readFileSync(join(opt, f)), f).graph.nodes.some((n) => n.opType === 'FusedConv'));
  assert.ok(fused);
  const rc = await run('node', [...cli, 'recover', opt, '--key', keyPath, '-o', out, '--original', src, '--bundle', bundle, '--runs', '2', '--json']);
  const r = JSON.parse(rc.stdout) as {
    relError: number;
    hashesChecked: number;
    latency: { msRecovered: number; msWholeOptimized: number; msUnoptimized: number; level: string; gain: number; gainKept: number };
  };
  assert.ok(r.relError <= 1e-4, `relError ${r.relError}`);
  assert.equal(r.hashesChecked, summary.members);
  assert.ok(r.latency.msRecovered > 0 && r.latency.msWholeOptimized > 0 && r.latency.msUnoptimized > 0);
  assert.equal(r.latency.level, 'extended', 'the members were optimized at the default level');
  const { gain, gainKept } = r.latency;
  assert.ok(Math.abs(gain - r.latency.msUnoptimized / r.latency.msWholeOptimized) < 2e-3 && Number.isFinite(gainKept), `gain ${gain}, kept ${gainKept}`);

  const key = readKey(keyPath);
  // A key whose real member was swapped (digest recomputed by the tamperer or not) is caught.
  const edited = structuredClone(key);
  const g = edited.groups.findIndex((x) => x.members.length > 1);
  edited.groups[g]!.real = edited.groups[g]!.members.find((f) => f !== key.groups[g]!.real)!;
  writeFileSync(join(tmp, 'edited.key'), JSON.stringify(edited));
  assert.throws(() => readKey(join(tmp, 'edited.key')), /digest mismatch/);
  await assert.rejects(recover(opt, edited, {}), /signature differs|outputs differ/);
  // A key for another bundle.
  await assert.rejects(recover(opt, { ...key, bundleId: '00'.repeat(16) }), /does not belong to this key/);
  // The CLI reports a tampered key as a one-line error and a non-zero exit.
  await assert.rejects(run('node', [...cli, 'recover', opt, '--key', join(tmp, 'edited.key'), '-o', out]), (e: { stderr: string }) =>
    /digest mismatch/.test(e.stderr),
  );
  // A modified member of the original bundle.
  const victim = key.groups[0]!.members[0]!;
  const bytes = readFileSync(join(bundle, victim));
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
  writeFileSync(join(bundle, victim), bytes);
  await assert.rejects(recover(opt, key, { bundleDir: bundle }), /hash differs/);
  // A missing optimized member.
  unlinkSync(join(opt, key.groups[1]!.members[0]!));
  await assert.rejects(recover(opt, key), /missing/);
  writeKey(key, join(tmp, 'copy.key'));
  assert.deepEqual(readKey(join(tmp, 'copy.key')), key);
});

test('manifest and key files that are valid JSON but not objects give one-line errors (fuzz regression)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'privml-proteus-json-'));
  try {
    for (const text of ['null', '42', '[]', '"x"']) {
      writeFileSync(join(dir, 'manifest.json'), text);
      assert.throws(() => readManifest(dir), /not a .* manifest/);
      writeFileSync(join(dir, 'owner.key'), text);
      assert.throws(() => readKey(join(dir, 'owner.key')), /not a .* key/);
    }
    // JSON.parse quotes the bad text, newlines included: the error must still be one line.
    writeFileSync(join(dir, 'manifest.json'), 'nul\n\n{x');
    assert.throws(
      () => readManifest(dir),
      (e: Error) => /not valid JSON/.test(e.message) && !e.message.includes('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('decoys written by worker threads and by the calling thread both give complete, recoverable bundles; bad thread counts are refused', async () => {
  const model = buildZoo('resnet20', {});
  for (const threads of [1, 3]) {
    const dir = join(tmp, `threads-${threads}`);
    const { key, manifest } = await obfuscate(model, { k: 4, size: 12, stats, outDir: dir, threads });
    assert.equal(manifest.members.length, 5 * key.groups.length);
    assert.deepEqual(readdirSync(dir).sort(), ['manifest.json', ...manifest.members].sort());
    for (const f of manifest.members) {
      const bytes = readFileSync(join(dir, f));
      assert.equal(key.hashes[f], createHash('sha256').update(bytes).digest('hex'), `${f}: hash`);
      assert.ok(await ortLoads(bytes), `${f} does not load in onnxruntime`);
    }
    // Unoptimized members recover the original (the key's reference pair checks the outputs).
    const r = await recover(dir, key, { bundleDir: dir });
    assert.ok(r.relError <= 1e-5, `threads ${threads}: relError ${r.relError}`);
  }
  for (const threads of [0, 1.5]) {
    const dir = join(tmp, `threads-bad-${threads}`);
    await assert.rejects(obfuscate(model, { k: 2, stats, outDir: dir, threads }), /threads must be a positive integer/);
    assert.ok(!readdirSync(tmp).some((f) => f.startsWith('.proteus-partial-')), 'partial folder left behind');
  }
});
