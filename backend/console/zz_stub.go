package console

// Temporary until console-core's skeleton is merged.
type pageBase struct {
	Title string
	CSRF  string
}
