// Package captcha draws weave's image captchas and keeps the outstanding
// ones: a distorted picture of a few characters drawn from a built-in
// stroke font, so no third-party service or network is involved. The
// built-in accounts' sign-up and the 1.1 User API's captcha_html page use
// it.
package captcha

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"image"
	"image/png"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Alphabet avoids look-alikes (O/0/Q/D, I/1/L, S/5, Z/2, B/8, G/6).
const Alphabet = "ACEFHJKMNPRTUVWXY347"

// Sizes of a captcha.
const (
	Len    = 6   // characters
	Width  = 260 // pixels
	Height = 80
	// Max is how many outstanding captchas a Set keeps.
	Max = 10000
)

// IDLen is the length of a captcha id (hex).
const IDLen = 32

type entry struct {
	sum     [32]byte // sha256 of the normalised answer
	ip      string
	expires time.Time
}

// Set is the in-memory set of outstanding captchas. It is per process:
// behind several weave processes the same one must answer (sticky
// sessions), or automation uses an override secret. The zero Set is ready.
type Set struct {
	mu sync.Mutex
	m  map[string]entry
}

func normaliseAnswer(s string) [32]byte {
	return sha256.Sum256([]byte(strings.ToUpper(strings.Join(strings.Fields(s), ""))))
}

// Add stores a new captcha for ip and returns its id and answer; false if
// too many are outstanding even after dropping the expired ones.
func (c *Set) Add(ip string, now time.Time, ttl time.Duration) (id, answer string, ok bool) {
	b := make([]byte, Len)
	for i := range b {
		b[i] = Alphabet[randIntn(len(Alphabet))]
	}
	var idb [IDLen / 2]byte
	rand.Read(idb[:])
	answer, id = string(b), hex.EncodeToString(idb[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]entry{}
	}
	if len(c.m) >= Max {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= Max {
			return "", "", false
		}
	}
	c.m[id] = entry{sum: normaliseAnswer(answer), ip: ip, expires: now.Add(ttl)}
	return id, answer, true
}

// Check takes the captcha id (whatever the outcome: one guess per image)
// and reports whether answer solves it for ip before it expired. The
// answer is compared as a hash in constant time; case and spaces do not
// matter.
func (c *Set) Check(id, answer, ip string, now time.Time) bool {
	if len(id) != IDLen || len(answer) > 64 {
		return false
	}
	c.mu.Lock()
	e, found := c.m[id]
	delete(c.m, id)
	c.mu.Unlock()
	sum := normaliseAnswer(answer)
	match := subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1
	return found && match && e.ip == ip && now.Before(e.expires)
}

// SecretMatches compares a request header with a configured secret in
// constant time; an empty secret never matches.
func SecretMatches(got, secret string) bool {
	if secret == "" || got == "" {
		return false
	}
	// Hashes make the comparison constant time whatever the lengths.
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// randIntn is uniform enough for n ≪ 2^63 (the bias is below 2^-58).
func randIntn(n int) int {
	var b [8]byte
	rand.Read(b[:])
	return int(binary.LittleEndian.Uint64(b[:]) >> 1 % uint64(n))
}

// glyphs is the captcha's stroke font: polylines on a 4×6 grid (y down).
var glyphs = map[byte][][][2]float64{
	'A': {{{0, 6}, {2, 0}, {4, 6}}, {{0.8, 3.9}, {3.2, 3.9}}},
	'C': {{{4, 1}, {3, 0}, {1, 0}, {0, 1}, {0, 5}, {1, 6}, {3, 6}, {4, 5}}},
	'E': {{{4, 0}, {0, 0}, {0, 6}, {4, 6}}, {{0, 3}, {3, 3}}},
	'F': {{{4, 0}, {0, 0}, {0, 6}}, {{0, 3}, {3, 3}}},
	'H': {{{0, 0}, {0, 6}}, {{4, 0}, {4, 6}}, {{0, 3}, {4, 3}}},
	'J': {{{1, 0}, {4, 0}}, {{3, 0}, {3, 5}, {2, 6}, {1, 6}, {0, 5}}},
	'K': {{{0, 0}, {0, 6}}, {{4, 0}, {0, 3.6}}, {{1.4, 2.6}, {4, 6}}},
	'M': {{{0, 6}, {0, 0}, {2, 3.2}, {4, 0}, {4, 6}}},
	'N': {{{0, 6}, {0, 0}, {4, 6}, {4, 0}}},
	'P': {{{0, 6}, {0, 0}, {3, 0}, {4, 1}, {4, 2}, {3, 3}, {0, 3}}},
	'R': {{{0, 6}, {0, 0}, {3, 0}, {4, 1}, {4, 2}, {3, 3}, {0, 3}}, {{2, 3}, {4, 6}}},
	'T': {{{0, 0}, {4, 0}}, {{2, 0}, {2, 6}}},
	'U': {{{0, 0}, {0, 5}, {1, 6}, {3, 6}, {4, 5}, {4, 0}}},
	'V': {{{0, 0}, {2, 6}, {4, 0}}},
	'W': {{{0, 0}, {1, 6}, {2, 2}, {3, 6}, {4, 0}}},
	'X': {{{0, 0}, {4, 6}}, {{4, 0}, {0, 6}}},
	'Y': {{{0, 0}, {2, 3}, {4, 0}}, {{2, 3}, {2, 6}}},
	'3': {{{0, 1}, {1, 0}, {3, 0}, {4, 1}, {4, 2}, {3, 3}, {1.5, 3}}, {{3, 3}, {4, 4}, {4, 5}, {3, 6}, {1, 6}, {0, 5}}},
	'4': {{{3, 6}, {3, 0}, {0, 4}, {4, 4}}},
	'7': {{{0, 0}, {4, 0}, {1.5, 6}}},
}

// canvas accumulates ink coverage (0..1) per pixel.
type canvas struct {
	w, h int
	ink  []float64
}

// dot inks an anti-aliased disc.
func (c *canvas) dot(x, y, r float64) {
	for py := int(y - r - 1); py <= int(y+r+1); py++ {
		for px := int(x - r - 1); px <= int(x+r+1); px++ {
			if px < 0 || py < 0 || px >= c.w || py >= c.h {
				continue
			}
			d := math.Hypot(float64(px)+0.5-x, float64(py)+0.5-y)
			if a := math.Min(1, math.Max(0, r+0.5-d)); a > c.ink[py*c.w+px] {
				c.ink[py*c.w+px] = a
			}
		}
	}
}

// stroke draws the polyline pts after mapping every sample point through
// f, so the warp bends strokes instead of just moving their ends.
func (c *canvas) stroke(pts [][2]float64, f func(x, y float64) (float64, float64), r float64) {
	for i := 1; i < len(pts); i++ {
		ax, ay := f(pts[i-1][0], pts[i-1][1])
		bx, by := f(pts[i][0], pts[i][1])
		steps := int(math.Hypot(bx-ax, by-ay)*2) + 1
		for s := 0; s <= steps; s++ {
			t := float64(s) / float64(steps)
			x, y := f(pts[i-1][0]+t*(pts[i][0]-pts[i-1][0]), pts[i-1][1]+t*(pts[i][1]-pts[i-1][1]))
			c.dot(x, y, r)
		}
	}
}

// PNG draws text: each glyph scaled, rotated, sheared and jittered
// on its own, the whole line warped by two sine waves, then crossed by
// noise curves and speckles in the same ink.
func PNG(text string) ([]byte, error) {
	var seed [32]byte
	rand.Read(seed[:])
	rng := mrand.New(mrand.NewChaCha8(seed))
	between := func(a, b float64) float64 { return a + rng.Float64()*(b-a) }
	c := &canvas{w: Width, h: Height, ink: make([]float64, Width*Height)}
	ampX, ampY := between(2, 4), between(3, 6)
	perX, perY := between(14, 22), between(28, 45)
	phX, phY := between(0, 2*math.Pi), between(0, 2*math.Pi)
	warp := func(x, y float64) (float64, float64) {
		return x + ampX*math.Sin(y/perX+phX), y + ampY*math.Sin(x/perY+phY)
	}
	step := float64(Width-30) / float64(len(text))
	for i := 0; i < len(text); i++ {
		scale := between(5.6, 6.8)
		rot, shear := between(-0.3, 0.3), between(-0.25, 0.25)
		cx := 15 + step*(float64(i)+0.5) + between(-3, 3)
		cy := float64(Height)/2 + between(-7, 7)
		sin, cos := math.Sincos(rot)
		glyph := func(gx, gy float64) (float64, float64) {
			x, y := (gx-2)*scale, (gy-3)*scale
			x += shear * y
			return warp(cx+x*cos-y*sin, cy+x*sin+y*cos)
		}
		r := between(2.0, 2.7)
		for _, pl := range glyphs[text[i]] {
			c.stroke(pl, glyph, r)
		}
	}
	for n := 0; n < 3; n++ {
		y0, amp, per, ph := between(15, 65), between(5, 15), between(20, 50), between(0, 2*math.Pi)
		var pts [][2]float64
		for x := -5.0; x <= Width+5; x += 4 {
			pts = append(pts, [2]float64{x, y0 + amp*math.Sin(x/per+ph)})
		}
		c.stroke(pts, func(x, y float64) (float64, float64) { return x, y }, between(0.8, 1.2))
	}
	for n := 0; n < 220; n++ {
		c.dot(between(0, Width), between(0, Height), between(0.4, 1.3))
	}
	img := image.NewGray(image.Rect(0, 0, Width, Height))
	for i, a := range c.ink {
		bg := 235 + rng.IntN(21) // faint paper grain
		img.Pix[i] = uint8(float64(bg) * (1 - 0.85*a))
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
