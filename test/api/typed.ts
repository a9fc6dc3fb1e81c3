import assert from 'node:assert/strict';
import { PrivmlError } from '../../src/index.js';

/** Assert `p` rejects with a one-line PrivmlError of class `cls` whose message matches `re`. */
export async function rejects(p: Promise<unknown>, cls: new (...a: never[]) => Error, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e.name}: ${e.message}`);
    assert.ok(e instanceof PrivmlError);
    assert.match(e.message, re);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
}
