package bootstrap

import "path/filepath"

// BoltFileName is the embedded store's file inside the data directory.
// mtmd and mtmctl both find the store through BoltPath.
const BoltFileName = "mtm.db"

// BoltPath is where the embedded store lives in dataDir.
func BoltPath(dataDir string) string { return filepath.Join(dataDir, BoltFileName) }

// KeyDir is the default signing-key directory in dataDir.
func KeyDir(dataDir string) string { return filepath.Join(dataDir, "keys") }
