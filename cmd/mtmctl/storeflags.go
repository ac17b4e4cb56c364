package main

import (
	"errors"
	"flag"
	"io"
	"log/slog"

	"github.com/mtmapp/mtm/backend/store/backends"
)

// storeFlags are the flags of the commands that open the store directly
// (bootstrap, reindex, reencrypt, keys): where it is and the
// key-encryption key that seals it, the same as the servers'.
type storeFlags struct {
	dataDir, redisURL, kekURI, kekFile *string
}

func bindStoreFlags(fs *flag.FlagSet, sys system, dataDirHelp string) storeFlags {
	return storeFlags{
		dataDir:  fs.String("data-dir", sys.getenv("MTM_DATA_DIR"), dataDirHelp),
		redisURL: fs.String("redis-url", sys.getenv("MTM_REDIS_URL"), "Redis `URL` (MTM_REDIS_URL) instead of a data directory; servers may run"),
		kekURI:   fs.String("kek-uri", sys.getenv("MTM_KEK_URI"), "the servers' key-encryption key in a KMS, as a Tink `URI` (MTM_KEK_URI)"),
		kekFile:  fs.String("kek-file", sys.getenv("MTM_KEK_FILE"), "the servers' key-encryption key `file` (MTM_KEK_FILE; default <data-dir>/phi-kek.json)"),
	}
}

// settings are the backends.Settings the flags name; an error when they
// name no store, or Redis without a key-encryption key.
func (f storeFlags) settings(cmd string) (backends.Settings, error) {
	s := backends.Settings{
		DataDir: *f.dataDir, RedisURL: *f.redisURL, KEKURI: *f.kekURI, KEKFile: *f.kekFile,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if s.DataDir == "" && s.RedisURL == "" {
		return s, errors.New(cmd + ": missing --data-dir (or --redis-url)")
	}
	if s.RedisURL != "" && s.KEKFilePath() == "" && s.KEKURI == "" {
		return s, errors.New(cmd + ": Redis needs the servers' key-encryption key: --kek-file F (a copy of theirs) or --kek-uri URI, or --data-dir of a server whose phi-kek.json it is")
	}
	return s, nil
}
