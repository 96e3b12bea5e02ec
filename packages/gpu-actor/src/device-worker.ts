// Entry of a device worker thread (started by the coordinator through spawnWorkerEndpoint);
// see DeviceWorkerRuntime for what it does.
import { DeviceWorkerRuntime } from './device-worker-runtime.ts';

await DeviceWorkerRuntime.start();
