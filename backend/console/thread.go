package console

func (c *Console) threadRoutes() {}
