// Worker of `seesaw profile`: the receiving end of the device-to-device transport (framed
// messages over a worker port, as the engine's device links). Answers every weight piece with
// a one-byte piece once it has been decoded, so the sender times the whole path.
import { parentWorkerEndpoint, type WeightSlice } from '@seesaw/protocol';

const endpoint = parentWorkerEndpoint();
const ack = new Uint8Array(1);
endpoint.onMessage((message) => {
  if (message.tag !== 'weightSlice') return;
  const reply: WeightSlice = { ...(message as WeightSlice), start: 0, end: 1 };
  endpoint.post(reply, [{ dtype: 'u8', shape: [1, 1], data: ack }]);
});
