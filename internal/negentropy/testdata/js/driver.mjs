// Test support for internal/negentropy's differential test: drives the
// NIP-77 Negentropy implementation of nostr-tools, an implementation of
// Negentropy v1 independent of Grapevine's, over JSON lines on stdin and
// stdout. One request per line, one answer per line:
//
//	{"op":"new","items":[[timestamp,"id hex"],...],"limit":n}  -> {}
//	{"op":"initiate"}                                          -> {"msg":"hex"}
//	{"op":"reconcile","msg":"hex"}  -> {"msg":"hex"|null,"have":[...],"need":[...]}
//
// "new" starts a fresh reconciliation (storage and Negentropy object) with
// the given frame size limit (nostr-tools requires at least 4096). have and
// need are what the reconcile call reported through its callbacks. An error
// is answered with {"error":"..."} and the driver goes on.
import { createInterface } from 'node:readline'
import { nip77 } from 'nostr-tools'

// nip77 is not a subpath export of the package; its index exports it.
const { Negentropy, NegentropyStorageVector } = nip77

let neg = null

function handle(req) {
	switch (req.op) {
		case 'new': {
			const storage = new NegentropyStorageVector()
			for (const [ts, id] of req.items) storage.insert(ts, id)
			storage.seal()
			neg = new Negentropy(storage, req.limit)
			return {}
		}
		case 'initiate':
			return { msg: neg.initiate() }
		case 'reconcile': {
			const have = []
			const need = []
			const msg = neg.reconcile(
				req.msg,
				id => have.push(id),
				id => need.push(id),
			)
			return { msg, have, need }
		}
		default:
			throw new Error(`unknown op ${req.op}`)
	}
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of lines) {
	let out
	try {
		out = handle(JSON.parse(line))
	} catch (e) {
		out = { error: String(e && e.message ? e.message : e) }
	}
	process.stdout.write(JSON.stringify(out) + '\n')
}
