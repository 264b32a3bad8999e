"""RKDEPLOY LAB STAND-IN for rknn.api.RKNN (rknn-toolkit2 2.x), not Rockchip's code.

It reproduces what RKNN-NOTES.md §5 documents of the real 2.x toolkit on the PC side, with synthetic
numbers: load_rknn checks the file's magic; init_runtime looks the device up with the bundled adb and,
with no device, prints `Get board target failed … no devices/emulators found` and raises ValueError
(it does not return -1); a target that differs from the model's platform fails as the runtime does;
eval_perf returns a str (frequency lists, `Total Time(us)`, `FPS`, or the per-layer table with
perf_debug=True); eval_memory returns the 2.x dict in bytes.
"""
import json
import os
import subprocess
import sys

_ADB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "3rdparty", "platform-tools", "adb",
                    "linux-x86_64", "adb")


class RKNN:
    def __init__(self, verbose=False, verbose_file=None):
        print("I rknn-toolkit2 version: 2.3.2+standin")
        self.model = None
        self.meta = {}
        self.device = None
        self.perf_debug = False

    def load_rknn(self, path):
        with open(path, "rb") as f:
            data = f.read()
        if data[:4] != b"RKNN":
            print("E load_rknn: the file is not an RKNN model!")
            return -1
        flat = int.from_bytes(data[16:24], "little")
        size = int.from_bytes(data[64 + flat:72 + flat], "little")
        self.meta = json.loads(data[72 + flat:72 + flat + size])
        self.model = data
        return 0

    def list_devices(self):
        out = subprocess.run([_ADB, "devices"], capture_output=True, text=True).stdout.splitlines()[1:]
        ids = [line.split()[0] for line in out if line.strip()]
        print("*************************\nall device(s) with adb mode:\n" + ",".join(ids) + "\n*************************")
        return ids, []

    def init_runtime(self, target=None, device_id=None, perf_debug=False, eval_mem=False, **kwargs):
        out = subprocess.run([_ADB, "devices"], capture_output=True, text=True).stdout.splitlines()[1:]
        ids = [line.split()[0] for line in out if line.strip()]
        if device_id not in ids if device_id else not ids:
            print("E init_runtime: Get board target failed: adb: error: failed to get feature set: "
                  "no devices/emulators found", file=sys.stderr)
            raise ValueError("Get board target failed")
        platforms = [p.lower() for p in self.meta.get("target_platform", [])]
        if target and platforms and target.lower() not in platforms:
            print(f"E RKNN: This rknn model is for {platforms[0]}, but current platform is {target.lower()}",
                  file=sys.stderr)
            return -1
        self.device, self.perf_debug = device_id, perf_debug
        return 0

    def eval_perf(self, is_print=True, fix_freq=True):
        text = ("CPU Current Frequency List:\n    - 1800000\n    - 2256000\nNPU Current Frequency List:\n"
                "    - 1000000000\nDDR Current Frequency List:\n    - 2112000000\n")
        layer_us = [4, 410 + len(self.model) % 97, 23]
        if self.perf_debug:
            text += ("ID   OpType           DataType Target InputShape  OutputShape  Cycles(DDR/NPU/Total)    Time(us)\n"
                     f"1    InputOperator    UINT8    CPU    \\          (1,3,64,64)  0/0/0                    {layer_us[0]}\n"
                     f"2    ConvRelu         INT8     NPU    (1,3,64,64) (1,8,32,32)  1000/2000/2000           {layer_us[1]}\n"
                     f"3    OutputOperator   INT8     CPU    (1,8,32,32) \\            0/0/0                    {layer_us[2]}\n"
                     f"Total Operator Elapsed Per Frame Time(us): {sum(layer_us)}\n"
                     "Total Memory Read/Write Per Frame Size(KB): 96\n"
                     "OpType             CallNumber   CPUTime(us)  GPUTime(us)  NPUTime(us)  TotalTime(us)  TimeRatio(%)\n"
                     f"ConvRelu           1            0            0            {layer_us[1]}          {layer_us[1]}            90.00%\n"
                     f"OutputOperator     1            {layer_us[2]}           0            0            {layer_us[2]}             6.00%\n")
        else:
            total = sum(layer_us) * 3
            text += f"Total Time(us): {total}\nFPS: {1e6 / total:.2f}\n"
        if is_print:
            print(text)
        return text

    def eval_memory(self, is_print=True):
        weight = len(self.model)
        result = {"weight_memory": weight, "internal_memory": 65536, "other_memory": 4096,
                  "total_memory": weight + 65536 + 4096}
        if is_print:
            print(f"Total Memory: {result['total_memory'] / 2 ** 20:.2f} MiB")
        return result

    def release(self):
        pass
