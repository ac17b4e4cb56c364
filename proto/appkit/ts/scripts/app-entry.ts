// What an app bundles: the kit with clients for every service over
// connect-web's transport. scripts/size.mjs measures it.
import { createConnectTransport } from "@connectrpc/connect-web";
import { createAppKit, memoryTokenStore, problemOf } from "../src";

const kit = createAppKit({
  store: memoryTokenStore(),
  transport: (interceptors) => createConnectTransport({ baseUrl: "https://api.example.org", interceptors }),
});
export { kit, problemOf };
