// Reference oracle for tests/unit/test_merkle_claims_js.py: runs @openzeppelin/merkle-tree
// (installed project-locally in tools/js) over a batch of cases read as JSON from stdin and
// prints, per case, everything the Python claims tree must reproduce byte for byte.
//
// stdin:  [{leafEncoding, values, sortLeaves, proofs: [valueIndex...],
//           multiproofs: [[valueIndex...]...], pyDump: <dump from Python> | null}, ...]
// stdout: [{root, dump, render, proofs, multiproofs, proofsByValue, pyDumpRoot, pyDumpRender}, ...]
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const { StandardMerkleTree } = require('../../tools/js/node_modules/@openzeppelin/merkle-tree');

const cases = JSON.parse(readFileSync(0, 'utf8'));
const out = cases.map((c) => {
  const tree = StandardMerkleTree.of(c.values, c.leafEncoding, { sortLeaves: c.sortLeaves });
  const proofs = c.proofs.map((i) => tree.getProof(i));
  // Prove by value too: exercises the hash lookup (and its last-duplicate-wins rule).
  const proofsByValue = c.proofs.map((i) => tree.getProof(c.values[i]));
  const multiproofs = c.multiproofs.map((idx) => {
    const mp = tree.getMultiProof(idx);
    if (!tree.verifyMultiProof(mp) || !StandardMerkleTree.verifyMultiProof(tree.root, c.leafEncoding, mp)) {
      throw new Error('multiproof does not verify');
    }
    return mp;
  });
  let pyDumpRoot = null;
  let pyDumpRender = null;
  if (c.pyDump !== null) {
    const loaded = StandardMerkleTree.load(c.pyDump); // validates every value and node
    pyDumpRoot = loaded.root;
    pyDumpRender = loaded.render();
  }
  return {
    root: tree.root,
    dump: JSON.stringify(tree.dump()),
    render: tree.render(),
    proofs,
    proofsByValue,
    multiproofs,
    pyDumpRoot,
    pyDumpRender,
  };
});
process.stdout.write(JSON.stringify(out));
