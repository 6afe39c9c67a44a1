// An independent wallet for tests/contracts/test_wallet_interop.py: ethers v6 (installed
// project-locally in tools/js) signs eth_signTypedData_v4 JSON and recovers signers of it.
//
// stdin:  {key: "0x…", sign: [typedData...], recover: [{typedData, signature}...]}
// stdout: {signatures: ["0x…"...], signers: ["0x…"...]}
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const { Wallet, verifyTypedData } = require('../../tools/js/node_modules/ethers');

// ethers derives the domain type itself and wants only the message's own types
const split = (data) => {
  const types = { ...data.types };
  delete types.EIP712Domain;
  return [data.domain, types, data.message];
};

const input = JSON.parse(readFileSync(0, 'utf8'));
const wallet = new Wallet(input.key);
const signatures = [];
for (const data of input.sign) {
  signatures.push(await wallet.signTypedData(...split(data)));
}
const signers = input.recover.map(({ typedData, signature }) => verifyTypedData(...split(typedData), signature));
process.stdout.write(JSON.stringify({ signatures, signers }));
