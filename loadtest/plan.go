package loadtest

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"math/rand/v2"

	"github.com/weave-sync/weave"
)

// mix holds the probabilities of the session model (load-model.md §1.1, the
// Molotov script): one value per decision a simulated client takes.
type mix struct {
	collections []string // the data collections sessions read and write

	metaGetWeights  []int   // number of meta/global GETs: 0..4
	clientsGetProb  float64 // GET /storage/clients
	clientsPostProb float64 // POST /storage/clients
	clientWeights   []int   // which client record: client0..client3
	collGetWeights  []int   // number of collection GETs: 0..4
	postWeights     []int   // number of collection POSTs: 0..4
	batchProb       float64 // sessions that upload with batch/commit
	deleteWeights   []int   // number of collection DELETEs: 0..4
	wipeProb        float64 // DELETE /storage when no collection was deleted

	newerMinAgo, newerMaxAgo int // `newer` is now minus U[min,max] seconds

	itemsMin, itemsExtra, itemsMax int // items per POST: min(U[itemsMin, B+itemsExtra], B), B ≤ itemsMax

	paretoAlpha  float64 // payload size = Pareto(alpha) × paretoScale bytes
	paretoScale  float64
	clientRepeat int // client record payload: the digit repeated
}

// The named session mixes (Config.Mix).
const (
	// MixMolotov is the load model's realistic mix (load-model.md §1.1):
	// write-heavy, two uploads of ~60 records in every three sessions.
	MixMolotov = "molotov"
	// MixFirefoxReads is a Firefox-like profile that mostly reads: the
	// background sync of a desktop whose other devices changed something
	// (docs/benchmarks.md has its composition and why).
	MixFirefoxReads = "firefox-reads"
)

var mixes = map[string]func() mix{
	MixMolotov:      molotovMix,
	MixFirefoxReads: firefoxReadsMix,
}

// MixNames lists the named mixes, the default first.
func MixNames() []string { return []string{MixMolotov, MixFirefoxReads} }

// firefoxReadsMix mostly reads: Firefox keeps meta/global and the clients
// record in its profile and fetches only collections that info/collections
// says changed, so a background sync is info/collections, a read or two of
// what other devices wrote, and now and then a small upload of local
// changes (a few history visits or a bookmark), rarely as a batch.
func firefoxReadsMix() mix {
	return mix{
		collections:     []string{"bookmarks", "forms", "passwords", "history", "prefs", "tabs"},
		metaGetWeights:  []int{90, 10, 0, 0, 0},
		clientsGetProb:  0.30,
		clientsPostProb: 0.05,
		clientWeights:   []int{80, 15, 4, 1},
		collGetWeights:  []int{30, 40, 18, 8, 4},
		postWeights:     []int{80, 17, 3, 0, 0},
		batchProb:       0.1,
		deleteWeights:   []int{100, 0, 0, 0, 0},
		wipeProb:        0,
		newerMinAgo:     60,
		newerMaxAgo:     3600,
		itemsMin:        1,
		itemsExtra:      0,
		itemsMax:        10,
		paretoAlpha:     3,
		paretoScale:     300,
		clientRepeat:    300,
	}
}

func molotovMix() mix {
	return mix{
		collections:     []string{"bookmarks", "forms", "passwords", "history", "prefs"},
		metaGetWeights:  []int{40, 60, 0, 0, 0},
		clientsGetProb:  0.10,
		clientsPostProb: 0.20,
		clientWeights:   []int{80, 15, 4, 1},
		collGetWeights:  []int{71, 15, 7, 4, 3},
		postWeights:     []int{67, 18, 9, 4, 2},
		batchProb:       0.5,
		deleteWeights:   []int{99, 1, 0, 0, 0},
		wipeProb:        0.01,
		newerMinAgo:     3600,
		newerMaxAgo:     360000,
		itemsMin:        20,
		itemsExtra:      80,
		itemsMax:        100,
		paretoAlpha:     3,
		paretoScale:     300,
		clientRepeat:    300,
	}
}

// plan is every random choice of one session, drawn up front so that a seed
// fixes the whole mix regardless of timing and concurrency. Only reactions
// to the server (PUT meta/global on 404) are decided while running.
type plan struct {
	metaGets      int
	clientsGet    bool
	clientsGetAgo int // seconds before now for `newer`
	clientsPost   bool
	clientIndex   int
	collGets      []collGet
	batch         bool
	posts         []post
	deletes       []string
	wipe          bool
}

type collGet struct {
	coll string
	ago  int
}

type post struct {
	coll  string
	items []item
}

// item is a record to upload; its payload (size bytes) is filled in when
// sent, from the user's current token as the Molotov script does.
type item struct {
	id   string
	size int
}

// sessionRand returns the random stream of session number n of a run: a
// ChaCha8 keyed by (seed, n), so streams are independent and reproducible.
func sessionRand(seed, n int64) *rand.Rand {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], uint64(seed))
	binary.LittleEndian.PutUint64(key[8:], uint64(n))
	copy(key[16:], "weave-loadtest01")
	return rand.New(rand.NewChaCha8(key))
}

// weighted draws an index with probability proportional to its weight.
func weighted(r *rand.Rand, weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	x := r.IntN(total)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// sample returns n distinct elements of s in random order.
func sample(r *rand.Rand, s []string, n int) []string {
	p := r.Perm(len(s))
	out := make([]string, 0, n)
	for _, i := range p[:min(n, len(s))] {
		out = append(out, s[i])
	}
	return out
}

// newPlan draws the choices of one session; the server limits bound the
// uploads the way a client sizes them from /info/configuration.
func (m mix) newPlan(r *rand.Rand, lim weave.Limits) plan {
	var p plan
	p.metaGets = weighted(r, m.metaGetWeights)

	p.clientsGet = r.Float64() < m.clientsGetProb
	p.clientsGetAgo = m.ago(r)
	p.clientsPost = r.Float64() < m.clientsPostProb
	p.clientIndex = weighted(r, m.clientWeights)

	for _, c := range sample(r, m.collections, weighted(r, m.collGetWeights)) {
		p.collGets = append(p.collGets, collGet{coll: c, ago: m.ago(r)})
	}

	nPosts := weighted(r, m.postWeights)
	p.batch = r.Float64() < m.batchProb
	var colls []string
	if p.batch {
		c := m.collections[r.IntN(len(m.collections))]
		for range nPosts {
			colls = append(colls, c)
		}
	} else {
		colls = sample(r, m.collections, nPosts)
	}
	// A batch as a whole must also respect the total limits; plain POSTs
	// only the per-request ones.
	totalRecords, totalBytes := lim.MaxTotalRecords, lim.MaxTotalBytes
	for _, c := range colls {
		if !p.batch {
			totalRecords, totalBytes = lim.MaxTotalRecords, lim.MaxTotalBytes
		}
		items := m.items(r, lim, totalRecords, totalBytes)
		if len(items) == 0 {
			break
		}
		for _, it := range items {
			totalRecords--
			totalBytes -= int64(it.size)
		}
		p.posts = append(p.posts, post{coll: c, items: items})
	}

	p.deletes = sample(r, m.collections, weighted(r, m.deleteWeights))
	if len(p.deletes) == 0 {
		p.wipe = r.Float64() < m.wipeProb
	}
	return p
}

func (m mix) ago(r *rand.Rand) int {
	return m.newerMinAgo + r.IntN(m.newerMaxAgo-m.newerMinAgo+1)
}

// items draws the records of one POST: a count skewed towards the per-POST
// maximum and Pareto-distributed payload sizes, trimmed so that the request
// stays within the server's byte limits.
func (m mix) items(r *rand.Rand, lim weave.Limits, recordsLeft, bytesLeft int64) []item {
	b := min(int64(m.itemsMax), lim.MaxPostRecords, recordsLeft)
	if b <= 0 {
		return nil
	}
	lo, hi := int64(m.itemsMin), b+int64(m.itemsExtra)
	n := min(lo+r.Int64N(hi-lo+1), b)

	postBytes := min(lim.MaxPostBytes, bytesLeft)
	// Leave room for the JSON around the payloads in the request body.
	requestBytes := lim.MaxRequestBytes - 1024
	maxPayload := min(lim.MaxRecordPayloadBytes, postBytes, requestBytes-64)
	var sum, wire int64
	items := make([]item, 0, n)
	for range n {
		var raw [10]byte
		for i := range raw {
			raw[i] = byte(r.Uint32())
		}
		id := base64.RawURLEncoding.EncodeToString(raw[:])
		size := m.payloadSize(r, maxPayload)
		itemWire := int64(size + len(id) + 32)
		if sum+int64(size) > postBytes || wire+itemWire > requestBytes {
			break
		}
		sum += int64(size)
		wire += itemWire
		items = append(items, item{id: id, size: size})
	}
	return items
}

// payloadSize is Pareto(alpha) × scale bytes (minimum scale, mean
// scale·alpha/(alpha-1)), capped at maxPayload.
func (m mix) payloadSize(r *rand.Rand, maxPayload int64) int {
	u := 1 - r.Float64() // (0, 1]
	v := m.paretoScale / math.Pow(u, 1/m.paretoAlpha)
	if v > float64(maxPayload) {
		return int(max(maxPayload, 1))
	}
	return int(v)
}

// normalizeLimits fills the limits a server did not publish (or published
// as nonsense) with the defaults, so uploads are always bounded.
func normalizeLimits(l weave.Limits) weave.Limits {
	d := weave.DefaultLimits()
	fix := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	fix(&l.MaxRequestBytes, d.MaxRequestBytes)
	fix(&l.MaxPostRecords, d.MaxPostRecords)
	fix(&l.MaxPostBytes, d.MaxPostBytes)
	fix(&l.MaxTotalRecords, d.MaxTotalRecords)
	fix(&l.MaxTotalBytes, d.MaxTotalBytes)
	fix(&l.MaxRecordPayloadBytes, d.MaxRecordPayloadBytes)
	// Tiny request limits would leave no room for a single record.
	l.MaxRequestBytes = max(l.MaxRequestBytes, 4096)
	return l
}
