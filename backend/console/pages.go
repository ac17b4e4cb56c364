package console

// morePages registers the pages beyond sign-in, inbox and thread (see
// doc.go: "Adding a page"). One line per page group.
func (c *Console) morePages() {
	c.patientPages() // patients, record, reviews, work lists, access, admin
}
