package seal_test

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/mtmapp/mtm/backend/store/seal"
)

// A 4 KB record (a 20-medicine patient's stored size). The store already
// compresses each record with zstd; BenchmarkRecord4K/zstd is that cost,
// the baseline the seal and open costs are read against in one run.
func BenchmarkRecord4K(b *testing.B) {
	record := bytes.Repeat([]byte("lisinopril 10 mg tablet, once daily; "), 4096/37)
	kek := newKEK(b)
	w, err := seal.NewDataKey(kek, "p1")
	if err != nil {
		b.Fatal(err)
	}
	dk, err := seal.OpenDataKey(kek, "p1", w)
	if err != nil {
		b.Fatal(err)
	}
	ct, err := dk.Seal("record", "p1", record)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("zstd", func(b *testing.B) {
		b.SetBytes(int64(len(record)))
		var dst []byte
		for b.Loop() {
			dst = enc.EncodeAll(record, dst[:0])
		}
	})
	b.Run("seal", func(b *testing.B) {
		b.SetBytes(int64(len(record)))
		for b.Loop() {
			if _, err := dk.Seal("record", "p1", record); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		b.SetBytes(int64(len(record)))
		for b.Loop() {
			if _, err := dk.Open("record", "p1", ct); err != nil {
				b.Fatal(err)
			}
		}
	})
	r := seal.NewKeyring(kek, 1024)
	b.Run("keyring-hit+open", func(b *testing.B) {
		b.SetBytes(int64(len(record)))
		for b.Loop() {
			k, err := r.DataKey("p1", w)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := k.Open("record", "p1", ct); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unwrap-data-key", func(b *testing.B) {
		for b.Loop() {
			if _, err := seal.OpenDataKey(kek, "p1", w); err != nil {
				b.Fatal(err)
			}
		}
	})
}
