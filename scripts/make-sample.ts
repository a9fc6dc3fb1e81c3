/**
 * Build the committed Fashion-MNIST sample: the FIRST 1,000 images and labels of the official
 * test split, written as gzipped IDX files plus a README with source and licence.
 *
 *   node --import tsx scripts/make-sample.ts [--src /usr/share/datasets/fashion-mnist] [--out data/fashion-mnist-sample] [--count 1000]
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { classCounts } from '../src/nn/data/dataset.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_FILES, fashionMnistSampleDir, fashionMnistSplitFiles } from '../src/nn/data/fashion-mnist.js';
import { readIdx, writeIdx } from '../src/nn/data/idx.js';

const { values } = parseArgs({
  options: {
    src: { type: 'string', default: '/usr/share/datasets/fashion-mnist' },
    out: { type: 'string' },
    count: { type: 'string', default: '1000' },
  },
});
const src = values.src!;
const out = values.out ?? fashionMnistSampleDir();
const count = Number(values.count);
if (!Number.isInteger(count) || count <= 0) throw new Error(`--count must be a positive integer, got ${values.count}`);

const files = fashionMnistSplitFiles(src, 'test');
if (!files) throw new Error(`${src}: Fashion-MNIST test files not found (apt-get install dataset-fashion-mnist)`);
const images = readIdx(files.images);
const labels = readIdx(files.labels);
const [n, h, w] = images.dims as [number, number, number];
if (count > n || labels.dims[0] !== n) throw new Error(`${src}: need ${count} examples, found ${n} images / ${labels.dims[0]} labels`);

writeIdx(join(out, FASHION_MNIST_FILES.test.images), [count, h, w], images.data.subarray(0, count * h * w), { gzip: true });
writeIdx(join(out, FASHION_MNIST_FILES.test.labels), [count], labels.data.subarray(0, count), { gzip: true });

const counts = classCounts({ labels: labels.data.subarray(0, count), classes: [...FASHION_MNIST_CLASSES] });
const balance = FASHION_MNIST_CLASSES.map((c, i) => `| ${i} | ${c} | ${counts[i]} |`).join('\n');
writeFileSync(join(out, 'README.md'), readme(count, balance));

console.log(`wrote ${count} examples to ${out}`);
FASHION_MNIST_CLASSES.forEach((c, i) => console.log(`  ${i} ${c.padEnd(12)} ${counts[i]}`));

function readme(k: number, table: string): string {
  return `# Fashion-MNIST sample

The **first ${k.toLocaleString('en-US')} images and labels of the Fashion-MNIST test set**
(\`t10k-images-idx3-ubyte\` / \`t10k-labels-idx1-ubyte\`, examples 0–${k - 1}, in their original
order), stored in the original IDX format, gzipped. It lets privml's tests and demos run
without the full data set.

- Source: Fashion-MNIST by Zalando Research, <https://github.com/zalandoresearch/fashion-mnist>
  (here taken from Debian's \`dataset-fashion-mnist\` package, \`/usr/share/datasets/fashion-mnist\`).
- Regenerate with \`node --import tsx scripts/make-sample.ts\`.
- Load with \`loadFashionMnistSample()\` from \`src/nn/data/fashion-mnist.ts\`.

Class balance of this sample:

| label | class | count |
|---|---|---|
${table}

## Licence

The Fashion-MNIST data set is distributed under the MIT licence:

The MIT License (MIT) Copyright © 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the “Software”), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED “AS IS”, WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
`;
}
