var __defProp = Object.defineProperty;
var __name = (target, value) => __defProp(target, "name", { value, configurable: true });

// wrangler-config:config:middleware/patch-console-prefix
var prefix = "[clientdocs-change-events]";

// ../node_modules/wrangler/templates/middleware/middleware-patch-console-prefix.ts
["log", "debug", "info"].forEach((method) => {
  globalThis.console[method] = new Proxy(globalThis.console[method], {
    apply(target, thisArg, argumentsList) {
      return target.apply(thisArg, [prefix, ...argumentsList]);
    }
  });
});

// ../consumers/change-events/build/index.js
import { WorkerEntrypoint as lt } from "cloudflare:workers";
import K from "./09d05239929e671e5eeee7553421fa174ef96c72-index_bg.wasm";
var H = globalThis.__worker_init_state = { criticalError: false, instanceId: 0 };
var m = class {
  static {
    __name(this, "m");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, _t.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    s();
    try {
      i.__wbg_containerstartupoptions_free(t, 0);
    } catch (e) {
      o(e);
    }
  }
  get enableInternet() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_containerstartupoptions_enableInternet(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t === 16777215 ? void 0 : t !== 0;
  }
  get entrypoint() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_containerstartupoptions_entrypoint(this.__wbg_ptr);
    } catch (r) {
      o(r);
    }
    var e = ft(t[0], t[1]);
    return i.__wbindgen_free(t[0], t[1] * 4, 4), e;
  }
  get env() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_containerstartupoptions_env(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t;
  }
  set enableInternet(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_containerstartupoptions_enableInternet(this.__wbg_ptr, f(t) ? 16777215 : t ? 1 : 0);
    } catch (e) {
      o(e);
    }
  }
  set entrypoint(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let e = bt(t, i.__wbindgen_malloc), r = l;
    s();
    try {
      i.__wbg_set_containerstartupoptions_entrypoint(this.__wbg_ptr, e, r);
    } catch (_) {
      o(_);
    }
  }
  set env(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_containerstartupoptions_env(this.__wbg_ptr, t);
    } catch (e) {
      o(e);
    }
  }
};
Symbol.dispose && (m.prototype[Symbol.dispose] = m.prototype.free);
var W = class {
  static {
    __name(this, "W");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, it.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    s();
    try {
      i.__wbg_intounderlyingbytesource_free(t, 0);
    } catch (e) {
      o(e);
    }
  }
  get autoAllocateChunkSize() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.intounderlyingbytesource_autoAllocateChunkSize(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t >>> 0;
  }
  cancel() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t = this.__destroy_into_raw();
    s();
    try {
      i.intounderlyingbytesource_cancel(t);
    } catch (e) {
      o(e);
    }
  }
  pull(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    s();
    try {
      e = i.intounderlyingbytesource_pull(this.__wbg_ptr, t);
    } catch (r) {
      o(r);
    }
    return e;
  }
  start(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.intounderlyingbytesource_start(this.__wbg_ptr, t);
    } catch (e) {
      o(e);
    }
  }
  get type() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.intounderlyingbytesource_type(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return rt[t];
  }
};
Symbol.dispose && (W.prototype[Symbol.dispose] = W.prototype.free);
var S = class {
  static {
    __name(this, "S");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, ot.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    s();
    try {
      i.__wbg_intounderlyingsink_free(t, 0);
    } catch (e) {
      o(e);
    }
  }
  abort(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let e = this.__destroy_into_raw(), r;
    s();
    try {
      r = i.intounderlyingsink_abort(e, t);
    } catch (_) {
      o(_);
    }
    return r;
  }
  close() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t = this.__destroy_into_raw(), e;
    s();
    try {
      e = i.intounderlyingsink_close(t);
    } catch (r) {
      o(r);
    }
    return e;
  }
  write(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    s();
    try {
      e = i.intounderlyingsink_write(this.__wbg_ptr, t);
    } catch (r) {
      o(r);
    }
    return e;
  }
};
Symbol.dispose && (S.prototype[Symbol.dispose] = S.prototype.free);
var A = class {
  static {
    __name(this, "A");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, st.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    s();
    try {
      i.__wbg_intounderlyingsource_free(t, 0);
    } catch (e) {
      o(e);
    }
  }
  cancel() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t = this.__destroy_into_raw();
    s();
    try {
      i.intounderlyingsource_cancel(t);
    } catch (e) {
      o(e);
    }
  }
  pull(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    s();
    try {
      e = i.intounderlyingsource_pull(this.__wbg_ptr, t);
    } catch (r) {
      o(r);
    }
    return e;
  }
};
Symbol.dispose && (A.prototype[Symbol.dispose] = A.prototype.free);
var v = class {
  static {
    __name(this, "v");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, ct.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    s();
    try {
      i.__wbg_minifyconfig_free(t, 0);
    } catch (e) {
      o(e);
    }
  }
  get css() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_minifyconfig_css(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t !== 0;
  }
  get html() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_minifyconfig_html(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t !== 0;
  }
  get js() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_minifyconfig_js(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t !== 0;
  }
  set css(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_minifyconfig_css(this.__wbg_ptr, t);
    } catch (e) {
      o(e);
    }
  }
  set html(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_minifyconfig_html(this.__wbg_ptr, t);
    } catch (e) {
      o(e);
    }
  }
  set js(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_minifyconfig_js(this.__wbg_ptr, t);
    } catch (e) {
      o(e);
    }
  }
};
Symbol.dispose && (v.prototype[Symbol.dispose] = v.prototype.free);
var I = class {
  static {
    __name(this, "I");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, at.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    s();
    try {
      i.__wbg_r2range_free(t, 0);
    } catch (e) {
      o(e);
    }
  }
  get length() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_r2range_length(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t[0] === 0 ? void 0 : t[1];
  }
  get offset() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_r2range_offset(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t[0] === 0 ? void 0 : t[1];
  }
  get suffix() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_r2range_suffix(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t[0] === 0 ? void 0 : t[1];
  }
  set length(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_r2range_length(this.__wbg_ptr, !f(t), f(t) ? 0 : t);
    } catch (e) {
      o(e);
    }
  }
  set offset(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_r2range_offset(this.__wbg_ptr, !f(t), f(t) ? 0 : t);
    } catch (e) {
      o(e);
    }
  }
  set suffix(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_r2range_suffix(this.__wbg_ptr, !f(t), f(t) ? 0 : t);
    } catch (e) {
      o(e);
    }
  }
};
Symbol.dispose && (I.prototype[Symbol.dispose] = I.prototype.free);
function k() {
  c++, p = null, E = null, F = null, typeof numBytesDecoded < "u" && (numBytesDecoded = 0), typeof l < "u" && (l = 0), N = false, O = false, D = new WebAssembly.Instance(K, Y()), i = D.exports, i.__wbindgen_start();
}
__name(k, "k");
function Q() {
  let n;
  s();
  try {
    n = i.__worker_init_state();
  } catch (t) {
    o(t);
  }
  return n;
}
__name(Q, "Q");
function X(n, t, e) {
  let r;
  s();
  try {
    r = i.queue(n, t, e);
  } catch (_) {
    o(_);
  }
  return r;
}
__name(X, "X");
function Y() {
  return { __proto__: null, "./index_bg.js": { __proto__: null, __wbg_Error_30c8987f7c2ed4e2: /* @__PURE__ */ __name(function(t, e) {
    return Error(h(t, e));
  }, "__wbg_Error_30c8987f7c2ed4e2"), __wbg_Number_14af1003b8dd5ead: /* @__PURE__ */ __name(function(t) {
    return Number(t);
  }, "__wbg_Number_14af1003b8dd5ead"), __wbg___wbindgen_bigint_get_as_i64_a2383202b9353e4c: /* @__PURE__ */ __name(function(t, e) {
    let r = e, _ = typeof r == "bigint" ? r : void 0;
    d().setBigInt64(t + 8, f(_) ? BigInt(0) : _, true), d().setInt32(t + 0, !f(_), true);
  }, "__wbg___wbindgen_bigint_get_as_i64_a2383202b9353e4c"), __wbg___wbindgen_boolean_get_5b446f51afd21013: /* @__PURE__ */ __name(function(t) {
    let e = t, r = typeof e == "boolean" ? e : void 0;
    return f(r) ? 16777215 : r ? 1 : 0;
  }, "__wbg___wbindgen_boolean_get_5b446f51afd21013"), __wbg___wbindgen_debug_string_4687d8d8c2017d52: /* @__PURE__ */ __name(function(t, e) {
    let r = B(e), _ = C(r, i.__wbindgen_malloc, i.__wbindgen_realloc), u = l;
    d().setInt32(t + 4, u, true), d().setInt32(t + 0, _, true);
  }, "__wbg___wbindgen_debug_string_4687d8d8c2017d52"), __wbg___wbindgen_in_92f62ee1427d9e49: /* @__PURE__ */ __name(function(t, e) {
    return t in e;
  }, "__wbg___wbindgen_in_92f62ee1427d9e49"), __wbg___wbindgen_is_bigint_b123553bed3bb382: /* @__PURE__ */ __name(function(t) {
    return typeof t == "bigint";
  }, "__wbg___wbindgen_is_bigint_b123553bed3bb382"), __wbg___wbindgen_is_function_1f9d30630b8b1d3d: /* @__PURE__ */ __name(function(t) {
    return typeof t == "function";
  }, "__wbg___wbindgen_is_function_1f9d30630b8b1d3d"), __wbg___wbindgen_is_null_or_undefined_f9435d56bdcc06df: /* @__PURE__ */ __name(function(t) {
    return t == null;
  }, "__wbg___wbindgen_is_null_or_undefined_f9435d56bdcc06df"), __wbg___wbindgen_is_object_3c45d4f2dde4e749: /* @__PURE__ */ __name(function(t) {
    let e = t;
    return typeof e == "object" && e !== null;
  }, "__wbg___wbindgen_is_object_3c45d4f2dde4e749"), __wbg___wbindgen_is_undefined_8865fb403f8fe9d8: /* @__PURE__ */ __name(function(t) {
    return t === void 0;
  }, "__wbg___wbindgen_is_undefined_8865fb403f8fe9d8"), __wbg___wbindgen_jsval_eq_02babf21faa37971: /* @__PURE__ */ __name(function(t, e) {
    return t === e;
  }, "__wbg___wbindgen_jsval_eq_02babf21faa37971"), __wbg___wbindgen_jsval_loose_eq_677f21e468d6b461: /* @__PURE__ */ __name(function(t, e) {
    return t == e;
  }, "__wbg___wbindgen_jsval_loose_eq_677f21e468d6b461"), __wbg___wbindgen_number_get_2e0e7dee9f701a71: /* @__PURE__ */ __name(function(t, e) {
    let r = e, _ = typeof r == "number" ? r : void 0;
    d().setFloat64(t + 8, f(_) ? 0 : _, true), d().setInt32(t + 0, !f(_), true);
  }, "__wbg___wbindgen_number_get_2e0e7dee9f701a71"), __wbg___wbindgen_reinit_3f79fdb34dee3ea9: /* @__PURE__ */ __name(function() {
    O = true;
  }, "__wbg___wbindgen_reinit_3f79fdb34dee3ea9"), __wbg___wbindgen_string_get_0380ccaa2f57f0d9: /* @__PURE__ */ __name(function(t, e) {
    let r = e, _ = typeof r == "string" ? r : void 0;
    var u = f(_) ? 0 : C(_, i.__wbindgen_malloc, i.__wbindgen_realloc), a = l;
    d().setInt32(t + 4, a, true), d().setInt32(t + 0, u, true);
  }, "__wbg___wbindgen_string_get_0380ccaa2f57f0d9"), __wbg___wbindgen_throw_41e9ee4f547fc59a: /* @__PURE__ */ __name(function(t, e) {
    throw new WebAssembly.Exception(L, [new Error(h(t, e))]);
  }, "__wbg___wbindgen_throw_41e9ee4f547fc59a"), __wbg__wbg_cb_unref_dcc1a90847f04c41: /* @__PURE__ */ __name(function(t) {
    t._wbg_cb_unref();
  }, "__wbg__wbg_cb_unref_dcc1a90847f04c41"), __wbg_ack_7b6b386461f37e32: /* @__PURE__ */ __name(function(t) {
    t.ack();
  }, "__wbg_ack_7b6b386461f37e32"), __wbg_all_2228d6712e7ddb97: /* @__PURE__ */ __name(function(t) {
    return t.all();
  }, "__wbg_all_2228d6712e7ddb97"), __wbg_bind_1f842289d2018ed8: /* @__PURE__ */ __name(function(t, e) {
    return t.bind(...e);
  }, "__wbg_bind_1f842289d2018ed8"), __wbg_body_7d841bc72644d2cb: /* @__PURE__ */ __name(function(t) {
    return t.body;
  }, "__wbg_body_7d841bc72644d2cb"), __wbg_buffer_56ec2905a66f58b9: /* @__PURE__ */ __name(function(t) {
    return t.buffer;
  }, "__wbg_buffer_56ec2905a66f58b9"), __wbg_byobRequest_54f7ce41d584549a: /* @__PURE__ */ __name(function(t) {
    let e = t.byobRequest;
    return f(e) ? 0 : w(e);
  }, "__wbg_byobRequest_54f7ce41d584549a"), __wbg_byteLength_9f985b8373f1f3fe: /* @__PURE__ */ __name(function(t) {
    return t.byteLength;
  }, "__wbg_byteLength_9f985b8373f1f3fe"), __wbg_byteOffset_0bd5a6a03553639c: /* @__PURE__ */ __name(function(t) {
    return t.byteOffset;
  }, "__wbg_byteOffset_0bd5a6a03553639c"), __wbg_call_187d372bd5fdd4aa: /* @__PURE__ */ __name(function(t, e, r) {
    return t.call(e, r);
  }, "__wbg_call_187d372bd5fdd4aa"), __wbg_call_6137034ef55c9d0f: /* @__PURE__ */ __name(function(t, e) {
    return t.call(e);
  }, "__wbg_call_6137034ef55c9d0f"), __wbg_cause_19276d032a32d4bd: /* @__PURE__ */ __name(function(t) {
    return t.cause;
  }, "__wbg_cause_19276d032a32d4bd"), __wbg_close_185286988f30f252: /* @__PURE__ */ __name(function(t) {
    t.close();
  }, "__wbg_close_185286988f30f252"), __wbg_close_748f26698dabe269: /* @__PURE__ */ __name(function(t) {
    t.close();
  }, "__wbg_close_748f26698dabe269"), __wbg_constructor_076176ce0f386e16: /* @__PURE__ */ __name(function(t) {
    return t.constructor;
  }, "__wbg_constructor_076176ce0f386e16"), __wbg_done_b41a1d26cdb37fb6: /* @__PURE__ */ __name(function(t) {
    return t.done;
  }, "__wbg_done_b41a1d26cdb37fb6"), __wbg_enqueue_4a01c128f9a0de16: /* @__PURE__ */ __name(function(t, e) {
    t.enqueue(e);
  }, "__wbg_enqueue_4a01c128f9a0de16"), __wbg_entries_fb6397112b1de25f: /* @__PURE__ */ __name(function(t) {
    return Object.entries(t);
  }, "__wbg_entries_fb6397112b1de25f"), __wbg_error_00c89883480d27e0: /* @__PURE__ */ __name(function(t, e) {
    let r = e.error;
    var _ = f(r) ? 0 : C(r, i.__wbindgen_malloc, i.__wbindgen_realloc), u = l;
    d().setInt32(t + 4, u, true), d().setInt32(t + 0, _, true);
  }, "__wbg_error_00c89883480d27e0"), __wbg_error_a30e98d44009f1bb: /* @__PURE__ */ __name(function(t, e) {
    console.error(t, e);
  }, "__wbg_error_a30e98d44009f1bb"), __wbg_getRandomValues_a608c4436c19407a: /* @__PURE__ */ __name(function(t, e) {
    globalThis.crypto.getRandomValues(q(t, e));
  }, "__wbg_getRandomValues_a608c4436c19407a"), __wbg_get_31af05bd4842a84f: /* @__PURE__ */ __name(function(t, e) {
    return Reflect.get(t, e);
  }, "__wbg_get_31af05bd4842a84f"), __wbg_get_658f6698067d9515: /* @__PURE__ */ __name(function(t, e) {
    return Reflect.get(t, e);
  }, "__wbg_get_658f6698067d9515"), __wbg_get_6c896e0571ddae51: /* @__PURE__ */ __name(function(t, e) {
    return t[e >>> 0];
  }, "__wbg_get_6c896e0571ddae51"), __wbg_get_88983e33467eae60: /* @__PURE__ */ __name(function(t, e) {
    let r = Reflect.get(t, e);
    return f(r) ? 0 : w(r);
  }, "__wbg_get_88983e33467eae60"), __wbg_get_unchecked_288889d017702237: /* @__PURE__ */ __name(function(t, e) {
    return t[e >>> 0];
  }, "__wbg_get_unchecked_288889d017702237"), __wbg_get_with_ref_key_6412cf3094599694: /* @__PURE__ */ __name(function(t, e) {
    return t[e];
  }, "__wbg_get_with_ref_key_6412cf3094599694"), __wbg_id_b7fe096fe71001f8: /* @__PURE__ */ __name(function(t) {
    return t.id;
  }, "__wbg_id_b7fe096fe71001f8"), __wbg_instanceId_9b67ff33ae8bef8a: /* @__PURE__ */ __name(function(t) {
    return t.instanceId;
  }, "__wbg_instanceId_9b67ff33ae8bef8a"), __wbg_instanceof_ArrayBuffer_a99f175873e5d9b8: /* @__PURE__ */ __name(function(t) {
    let e;
    try {
      e = t instanceof ArrayBuffer;
    } catch {
      e = false;
    }
    return e;
  }, "__wbg_instanceof_ArrayBuffer_a99f175873e5d9b8"), __wbg_instanceof_Error_80a725f81f2e102d: /* @__PURE__ */ __name(function(t) {
    let e;
    try {
      e = t instanceof Error;
    } catch {
      e = false;
    }
    return e;
  }, "__wbg_instanceof_Error_80a725f81f2e102d"), __wbg_instanceof_Map_b2611749102d7ba3: /* @__PURE__ */ __name(function(t) {
    let e;
    try {
      e = t instanceof Map;
    } catch {
      e = false;
    }
    return e;
  }, "__wbg_instanceof_Map_b2611749102d7ba3"), __wbg_instanceof_Uint8Array_828cef2aaacafc31: /* @__PURE__ */ __name(function(t) {
    let e;
    try {
      e = t instanceof Uint8Array;
    } catch {
      e = false;
    }
    return e;
  }, "__wbg_instanceof_Uint8Array_828cef2aaacafc31"), __wbg_isArray_e15a2ff68ffdbef2: /* @__PURE__ */ __name(function(t) {
    return Array.isArray(t);
  }, "__wbg_isArray_e15a2ff68ffdbef2"), __wbg_isSafeInteger_717808ad6a54bd9e: /* @__PURE__ */ __name(function(t) {
    return Number.isSafeInteger(t);
  }, "__wbg_isSafeInteger_717808ad6a54bd9e"), __wbg_iterator_e3c31c892080e444: /* @__PURE__ */ __name(function() {
    return Symbol.iterator;
  }, "__wbg_iterator_e3c31c892080e444"), __wbg_length_7f3c00c40364105e: /* @__PURE__ */ __name(function(t) {
    return t.length;
  }, "__wbg_length_7f3c00c40364105e"), __wbg_length_d4bdea10311bd9cf: /* @__PURE__ */ __name(function(t) {
    return t.length;
  }, "__wbg_length_d4bdea10311bd9cf"), __wbg_message_5f8387f0c32b90a7: /* @__PURE__ */ __name(function(t) {
    return t.message;
  }, "__wbg_message_5f8387f0c32b90a7"), __wbg_messages_7842de91c486e343: /* @__PURE__ */ __name(function(t) {
    return t.messages;
  }, "__wbg_messages_7842de91c486e343"), __wbg_meta_594bb85654c055e4: /* @__PURE__ */ __name(function(t) {
    return t.meta;
  }, "__wbg_meta_594bb85654c055e4"), __wbg_name_e2eac7cdfa054f65: /* @__PURE__ */ __name(function(t) {
    return t.name;
  }, "__wbg_name_e2eac7cdfa054f65"), __wbg_name_f9b814d78e8e299f: /* @__PURE__ */ __name(function(t) {
    return t.name;
  }, "__wbg_name_f9b814d78e8e299f"), __wbg_new_1dbf7428bba60a42: /* @__PURE__ */ __name(function(t) {
    return new Uint8Array(t);
  }, "__wbg_new_1dbf7428bba60a42"), __wbg_new_343a093a3c2ffb4e: /* @__PURE__ */ __name(function(t, e) {
    return new Error(h(t, e));
  }, "__wbg_new_343a093a3c2ffb4e"), __wbg_new_617a8cdb8bb1130e: /* @__PURE__ */ __name(function() {
    return new Object();
  }, "__wbg_new_617a8cdb8bb1130e"), __wbg_new_ee2291f50781bf1d: /* @__PURE__ */ __name(function() {
    return new Array();
  }, "__wbg_new_ee2291f50781bf1d"), __wbg_new_typed_b01cb72a8af741a3: /* @__PURE__ */ __name(function(t, e) {
    try {
      var r = { a: t, b: e }, _ = /* @__PURE__ */ __name((a, b) => {
        let g = r.a;
        r.a = 0;
        try {
          return nt(g, r.b, a, b);
        } finally {
          r.a = g;
        }
      }, "_");
      return new Promise(_);
    } finally {
      r.a = 0;
    }
  }, "__wbg_new_typed_b01cb72a8af741a3"), __wbg_new_with_byte_offset_and_length_2f5d7fc2a828b74d: /* @__PURE__ */ __name(function(t, e, r) {
    return new Uint8Array(t, e >>> 0, r >>> 0);
  }, "__wbg_new_with_byte_offset_and_length_2f5d7fc2a828b74d"), __wbg_next_33784799010f1bbe: /* @__PURE__ */ __name(function(t) {
    return t.next;
  }, "__wbg_next_33784799010f1bbe"), __wbg_next_f4aac29c42af995c: /* @__PURE__ */ __name(function(t) {
    return t.next();
  }, "__wbg_next_f4aac29c42af995c"), __wbg_now_aa4ccb83129e9e55: /* @__PURE__ */ __name(function() {
    return Date.now();
  }, "__wbg_now_aa4ccb83129e9e55"), __wbg_parse_0fc53dead14b3b42: /* @__PURE__ */ __name(function(t, e) {
    return JSON.parse(h(t, e));
  }, "__wbg_parse_0fc53dead14b3b42"), __wbg_prepare_c5a549d661139dc2: /* @__PURE__ */ __name(function(t, e, r) {
    return t.prepare(h(e, r));
  }, "__wbg_prepare_c5a549d661139dc2"), __wbg_prototypesetcall_bc27214492979395: /* @__PURE__ */ __name(function(t, e, r) {
    Uint8Array.prototype.set.call(q(t, e), r);
  }, "__wbg_prototypesetcall_bc27214492979395"), __wbg_push_2baf45db356cf468: /* @__PURE__ */ __name(function(t, e) {
    return t.push(e);
  }, "__wbg_push_2baf45db356cf468"), __wbg_queueMicrotask_9833f9a49df95a49: /* @__PURE__ */ __name(function(t) {
    return t.queueMicrotask;
  }, "__wbg_queueMicrotask_9833f9a49df95a49"), __wbg_queueMicrotask_a72f977e97f23c5f: /* @__PURE__ */ __name(function(t) {
    queueMicrotask(t);
  }, "__wbg_queueMicrotask_a72f977e97f23c5f"), __wbg_queue_3959d8eb4f15b4bb: /* @__PURE__ */ __name(function(t) {
    return t.queue;
  }, "__wbg_queue_3959d8eb4f15b4bb"), __wbg_resolve_0076e10020304ede: /* @__PURE__ */ __name(function(t) {
    return Promise.resolve(t);
  }, "__wbg_resolve_0076e10020304ede"), __wbg_respond_c102fabcc79e5ef0: /* @__PURE__ */ __name(function(t, e) {
    t.respond(e >>> 0);
  }, "__wbg_respond_c102fabcc79e5ef0"), __wbg_results_a5533c886ed43a9a: /* @__PURE__ */ __name(function(t) {
    let e = t.results;
    return f(e) ? 0 : w(e);
  }, "__wbg_results_a5533c886ed43a9a"), __wbg_retryAll_108d43f73f50c82e: /* @__PURE__ */ __name(function(t, e) {
    t.retryAll(e);
  }, "__wbg_retryAll_108d43f73f50c82e"), __wbg_retry_9051b0b206a27925: /* @__PURE__ */ __name(function(t, e) {
    t.retry(e);
  }, "__wbg_retry_9051b0b206a27925"), __wbg_sendBatch_4e659d382b81e768: /* @__PURE__ */ __name(function(t, e, r) {
    return t.sendBatch(e, r);
  }, "__wbg_sendBatch_4e659d382b81e768"), __wbg_set_145a351398b48c65: /* @__PURE__ */ __name(function(t, e, r) {
    return Reflect.set(t, e, r);
  }, "__wbg_set_145a351398b48c65"), __wbg_set_575d3ddb70fe831d: /* @__PURE__ */ __name(function(t, e, r) {
    t.set(q(e, r));
  }, "__wbg_set_575d3ddb70fe831d"), __wbg_set_6be42768c690e380: /* @__PURE__ */ __name(function(t, e, r) {
    t[e] = r;
  }, "__wbg_set_6be42768c690e380"), __wbg_set_criticalError_3904d60fe2a0b05b: /* @__PURE__ */ __name(function(t, e) {
    t.criticalError = e !== 0;
  }, "__wbg_set_criticalError_3904d60fe2a0b05b"), __wbg_set_instanceId_9ad5caac0a4e519c: /* @__PURE__ */ __name(function(t, e) {
    t.instanceId = e >>> 0;
  }, "__wbg_set_instanceId_9ad5caac0a4e519c"), __wbg_static_accessor_GLOBAL_266715b9d96ba635: /* @__PURE__ */ __name(function() {
    let t = typeof global > "u" ? null : global;
    return f(t) ? 0 : w(t);
  }, "__wbg_static_accessor_GLOBAL_266715b9d96ba635"), __wbg_static_accessor_GLOBAL_THIS_10fb7dc1ae063179: /* @__PURE__ */ __name(function() {
    let t = typeof globalThis > "u" ? null : globalThis;
    return f(t) ? 0 : w(t);
  }, "__wbg_static_accessor_GLOBAL_THIS_10fb7dc1ae063179"), __wbg_static_accessor_INIT_STATE_e3fce2ad8a08e94e: /* @__PURE__ */ __name(function() {
    return H;
  }, "__wbg_static_accessor_INIT_STATE_e3fce2ad8a08e94e"), __wbg_static_accessor_SELF_0b583911f537483a: /* @__PURE__ */ __name(function() {
    let t = typeof self > "u" ? null : self;
    return f(t) ? 0 : w(t);
  }, "__wbg_static_accessor_SELF_0b583911f537483a"), __wbg_static_accessor_WINDOW_d7f903d1508cbdc4: /* @__PURE__ */ __name(function() {
    let t = typeof window > "u" ? null : window;
    return f(t) ? 0 : w(t);
  }, "__wbg_static_accessor_WINDOW_d7f903d1508cbdc4"), __wbg_stringify_52ff602c1cc4fbb6: /* @__PURE__ */ __name(function(t) {
    return JSON.stringify(t);
  }, "__wbg_stringify_52ff602c1cc4fbb6"), __wbg_then_c949d5a25a4e78f8: /* @__PURE__ */ __name(function(t, e, r) {
    return t.then(e, r);
  }, "__wbg_then_c949d5a25a4e78f8"), __wbg_then_e71170d78fcf8954: /* @__PURE__ */ __name(function(t, e) {
    return t.then(e);
  }, "__wbg_then_e71170d78fcf8954"), __wbg_value_f3c585ee8f5ba40c: /* @__PURE__ */ __name(function(t) {
    return t.value;
  }, "__wbg_value_f3c585ee8f5ba40c"), __wbg_view_9c570f33e8d6ab96: /* @__PURE__ */ __name(function(t) {
    let e = t.view;
    return f(e) ? 0 : w(e);
  }, "__wbg_view_9c570f33e8d6ab96"), __wbg_warn_13abc63e0d4b3527: /* @__PURE__ */ __name(function(t) {
    console.warn(t);
  }, "__wbg_warn_13abc63e0d4b3527"), __wbg_withSession_b0b32ea064424efe: /* @__PURE__ */ __name(function(t, e, r) {
    return t.withSession(e === 0 ? void 0 : h(e, r));
  }, "__wbg_withSession_b0b32ea064424efe"), __wbindgen_generic_0000000000000001: /* @__PURE__ */ __name(function(t, e) {
    return ut(t, e, et);
  }, "__wbindgen_generic_0000000000000001"), __wbindgen_generic_0000000000000002: /* @__PURE__ */ __name(function(t) {
    return t;
  }, "__wbindgen_generic_0000000000000002"), __wbindgen_generic_0000000000000003: /* @__PURE__ */ __name(function(t) {
    return t;
  }, "__wbindgen_generic_0000000000000003"), __wbindgen_generic_0000000000000004: /* @__PURE__ */ __name(function(t, e) {
    return h(t, e);
  }, "__wbindgen_generic_0000000000000004"), __wbindgen_generic_0000000000000005: /* @__PURE__ */ __name(function(t) {
    return BigInt.asUintN(64, t);
  }, "__wbindgen_generic_0000000000000005"), __wbindgen_init_externref_table: /* @__PURE__ */ __name(function() {
    let t = i.__wbindgen_externrefs, e = t.grow(4);
    t.set(0, void 0), t.set(e + 0, void 0), t.set(e + 1, null), t.set(e + 2, true), t.set(e + 3, false);
  }, "__wbindgen_init_externref_table"), __wbindgen_jstag: WebAssembly.JSTag, __wbindgen_rethrow_critical: /* @__PURE__ */ __name(function(t) {
    throw new Error("Critical error", { cause: t });
  }, "__wbindgen_rethrow_critical") } };
}
__name(Y, "Y");
var L = new WebAssembly.Tag({ parameters: ["externref"] });
var U;
var N = false;
function Z() {
  N = true;
  try {
    let n = V()[i.__abort_handler.value / 4];
    n && i.__wbindgen_export.get(n)();
  } catch {
  }
}
__name(Z, "Z");
function o(n) {
  throw n instanceof WebAssembly.Exception && n.is(L) ? n.getArg(L, 0) : (V()[U] = 1, Z(), n);
}
__name(o, "o");
function s() {
  if (U ??= i.__instance_terminated.value / 4, V()[U]) {
    if (N || Z(), O) {
      k();
      return;
    }
    throw new Error("Module terminated");
  } else O && k();
}
__name(s, "s");
function et(n, t, e) {
  let r;
  s();
  try {
    r = i.wasm_bindgen__convert__closures_____invoke__h430dd6dc81cecfa9(n, t, e);
  } catch (_) {
    o(_);
  }
  if (r[1]) throw gt(r[0]);
}
__name(et, "et");
function nt(n, t, e, r) {
  s();
  try {
    i.wasm_bindgen__convert__closures_____invoke__h00750db734acdf10(n, t, e, r);
  } catch (_) {
    o(_);
  }
}
__name(nt, "nt");
var rt = ["bytes"];
var c = 0;
var _t = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: n, instance: t }) => {
  t === c && i.__wbg_containerstartupoptions_free(n, 1);
});
var it = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: n, instance: t }) => {
  t === c && i.__wbg_intounderlyingbytesource_free(n, 1);
});
var ot = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: n, instance: t }) => {
  t === c && i.__wbg_intounderlyingsink_free(n, 1);
});
var st = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: n, instance: t }) => {
  t === c && i.__wbg_intounderlyingsource_free(n, 1);
});
var ct = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: n, instance: t }) => {
  t === c && i.__wbg_minifyconfig_free(n, 1);
});
var at = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: n, instance: t }) => {
  t === c && i.__wbg_r2range_free(n, 1);
});
function w(n) {
  let t = i.__externref_table_alloc();
  return i.__wbindgen_externrefs.set(t, n), t;
}
__name(w, "w");
var G = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry((n) => {
  n.instance === c && i.__wbindgen_destroy_closure(n.a, n.b);
});
function B(n) {
  let t = typeof n;
  if (t == "number" || t == "boolean" || n == null) return `${n}`;
  if (t == "string") return `"${n}"`;
  if (t == "symbol") {
    let _ = n.description;
    return _ == null ? "Symbol" : `Symbol(${_})`;
  }
  if (t == "function") {
    let _ = n.name;
    return typeof _ == "string" && _.length > 0 ? `Function(${_})` : "Function";
  }
  if (Array.isArray(n)) {
    let _ = n.length, u = "[";
    _ > 0 && (u += B(n[0]));
    for (let a = 1; a < _; a++) u += ", " + B(n[a]);
    return u += "]", u;
  }
  let e = /\[object ([^\]]+)\]/.exec(toString.call(n)), r;
  if (e && e.length > 1) r = e[1];
  else return toString.call(n);
  if (r == "Object") try {
    return "Object(" + JSON.stringify(n) + ")";
  } catch {
    return "Object";
  }
  return n instanceof Error ? `${n.name}: ${n.message}
${n.stack}` : r;
}
__name(B, "B");
function ft(n, t) {
  n = n >>> 0;
  let e = d(), r = [];
  for (let _ = n; _ < n + 4 * t; _ += 4) r.push(i.__wbindgen_externrefs.get(e.getUint32(_, true)));
  return i.__externref_drop_slice(n, t), r;
}
__name(ft, "ft");
function q(n, t) {
  return n = n >>> 0, R().subarray(n / 1, n / 1 + t);
}
__name(q, "q");
var p = null;
function d() {
  return (p === null || p.buffer.detached === true || p.buffer.detached === void 0 && p.buffer !== i.memory.buffer) && (p = new DataView(i.memory.buffer)), p;
}
__name(d, "d");
var E = null;
function V() {
  return (E === null || E.byteLength === 0) && (E = new Int32Array(i.memory.buffer)), E;
}
__name(V, "V");
function h(n, t) {
  return dt(n >>> 0, t);
}
__name(h, "h");
var F = null;
function R() {
  return (F === null || F.byteLength === 0) && (F = new Uint8Array(i.memory.buffer)), F;
}
__name(R, "R");
function f(n) {
  return n == null;
}
__name(f, "f");
function ut(n, t, e) {
  let r = { a: n, b: t, cnt: 1, instance: c }, _ = /* @__PURE__ */ __name((...u) => {
    if (r.instance !== c) throw new Error("Cannot invoke closure from previous WASM instance");
    r.cnt++;
    let a = r.a;
    r.a = 0;
    try {
      return e(a, r.b, ...u);
    } finally {
      r.a = a, _._wbg_cb_unref();
    }
  }, "_");
  return _._wbg_cb_unref = () => {
    --r.cnt === 0 && (i.__wbindgen_destroy_closure(r.a, r.b), r.a = 0, G.unregister(r));
  }, G.register(_, r, r), _;
}
__name(ut, "ut");
function bt(n, t) {
  let e = t(n.length * 4, 4) >>> 0;
  for (let r = 0; r < n.length; r++) {
    let _ = w(n[r]);
    d().setUint32(e + 4 * r, _, true);
  }
  return l = n.length, e;
}
__name(bt, "bt");
function C(n, t, e) {
  if (e === void 0) {
    let b = j.encode(n), g = t(b.length, 1) >>> 0;
    return R().subarray(g, g + b.length).set(b), l = b.length, g;
  }
  let r = n.length, _ = t(r, 1) >>> 0, u = R(), a = 0;
  for (; a < r; a++) {
    let b = n.charCodeAt(a);
    if (b > 127) break;
    u[_ + a] = b;
  }
  if (a !== r) {
    a !== 0 && (n = n.slice(a)), _ = e(_, r, r = a + n.length * 3, 1) >>> 0;
    let b = R().subarray(_ + a, _ + r), g = j.encodeInto(n, b);
    a += g.written, _ = e(_, r, a, 1) >>> 0;
  }
  return l = a, _;
}
__name(C, "C");
var O = false;
function gt(n) {
  let t = i.__wbindgen_externrefs.get(n);
  return i.__externref_table_dealloc(n), t;
}
__name(gt, "gt");
var tt = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });
tt.decode();
function dt(n, t) {
  return tt.decode(R().subarray(n, n + t));
}
__name(dt, "dt");
var j = new TextEncoder();
"encodeInto" in j || (j.encodeInto = function(n, t) {
  let e = j.encode(n);
  return t.set(e), { read: n.length, written: e.length };
});
var l = 0;
var D = new WebAssembly.Instance(K, Y());
var i = D.exports;
i.__wbindgen_start();
Error.stackTraceLimit = 100;
var y = Q();
function $() {
  y.criticalError && (console.log("Reinitializing Wasm application"), k(), y.criticalError = false, y.instanceId++);
}
__name($, "$");
addEventListener("error", (n) => {
  J(n.error);
});
function J(n) {
  n instanceof WebAssembly.RuntimeError && (console.error("Critical", n), y.criticalError = true);
}
__name(J, "J");
var z = class extends lt {
  static {
    __name(this, "z");
  }
};
z.prototype.queue = function(t) {
  return X.call(this, t, this.env, this.ctx);
};
var yt = { set: /* @__PURE__ */ __name((n, t, e, r) => Reflect.set(n.instance, t, e, r), "set"), has: /* @__PURE__ */ __name((n, t) => Reflect.has(n.instance, t), "has"), deleteProperty: /* @__PURE__ */ __name((n, t) => Reflect.deleteProperty(n.instance, t), "deleteProperty"), apply: /* @__PURE__ */ __name((n, t, e) => Reflect.apply(n.instance, t, e), "apply"), construct: /* @__PURE__ */ __name((n, t, e) => Reflect.construct(n.instance, t, e), "construct"), getPrototypeOf: /* @__PURE__ */ __name((n) => Reflect.getPrototypeOf(n.instance), "getPrototypeOf"), setPrototypeOf: /* @__PURE__ */ __name((n, t) => Reflect.setPrototypeOf(n.instance, t), "setPrototypeOf"), isExtensible: /* @__PURE__ */ __name((n) => Reflect.isExtensible(n.instance), "isExtensible"), preventExtensions: /* @__PURE__ */ __name((n) => Reflect.preventExtensions(n.instance), "preventExtensions"), getOwnPropertyDescriptor: /* @__PURE__ */ __name((n, t) => Reflect.getOwnPropertyDescriptor(n.instance, t), "getOwnPropertyDescriptor"), defineProperty: /* @__PURE__ */ __name((n, t, e) => Reflect.defineProperty(n.instance, t, e), "defineProperty"), ownKeys: /* @__PURE__ */ __name((n) => Reflect.ownKeys(n.instance), "ownKeys") };
var T = { construct(n, t, e) {
  try {
    $();
    let r = { instance: Reflect.construct(n, t, e), instanceId: y.instanceId, ctor: n, args: t, newTarget: e };
    return new Proxy(r, { ...yt, get(_, u, a) {
      _.instanceId !== y.instanceId && (_.instance = Reflect.construct(_.ctor, _.args, _.newTarget), _.instanceId = y.instanceId);
      let b = Reflect.get(_.instance, u, a);
      return typeof b != "function" ? b : b.constructor === Function ? new Proxy(b, { apply(g, M, P) {
        $();
        try {
          return g.apply(M, P);
        } catch (x) {
          throw J(x), x;
        }
      } }) : new Proxy(b, { async apply(g, M, P) {
        $();
        try {
          return await g.apply(M, P);
        } catch (x) {
          throw J(x), x;
        }
      } });
    } });
  } catch (r) {
    throw y.criticalError = true, r;
  }
} };
var It = new Proxy(z, T);
var xt = new Proxy(m, T);
var Et = new Proxy(v, T);
var Ft = new Proxy(I, T);

// ../node_modules/wrangler/templates/middleware/middleware-ensure-req-body-drained.ts
var drainBody = /* @__PURE__ */ __name(async (request, env, _ctx, middlewareCtx) => {
  try {
    return await middlewareCtx.next(request, env);
  } finally {
    try {
      if (request.body !== null && !request.bodyUsed) {
        const reader = request.body.getReader();
        while (!(await reader.read()).done) {
        }
      }
    } catch (e) {
      console.error("Failed to drain the unused request body.", e);
    }
  }
}, "drainBody");
var middleware_ensure_req_body_drained_default = drainBody;

// ../node_modules/wrangler/templates/middleware/middleware-miniflare3-json-error.ts
function reduceError(e) {
  return {
    name: e?.name,
    message: e?.message ?? String(e),
    stack: e?.stack,
    cause: e?.cause === void 0 ? void 0 : reduceError(e.cause)
  };
}
__name(reduceError, "reduceError");
var jsonError = /* @__PURE__ */ __name(async (request, env, _ctx, middlewareCtx) => {
  try {
    return await middlewareCtx.next(request, env);
  } catch (e) {
    const error = reduceError(e);
    const body = JSON.stringify(error);
    const headers = {
      "Content-Type": "application/json",
      "MF-Experimental-Error-Stack": "true"
    };
    const encoded = encodeURIComponent(body);
    if (encoded.length <= 8192) {
      headers["MF-Experimental-Error-Stack-Payload"] = encoded;
    }
    return new Response(body, { status: 500, headers });
  }
}, "jsonError");
var middleware_miniflare3_json_error_default = jsonError;

// .wrangler/tmp/bundle-fDoeKp/middleware-insertion-facade.js
var __INTERNAL_WRANGLER_MIDDLEWARE__ = [
  middleware_ensure_req_body_drained_default,
  middleware_miniflare3_json_error_default
];
var middleware_insertion_facade_default = It;

// ../node_modules/wrangler/templates/middleware/common.ts
var __facade_middleware__ = [];
function __facade_register__(...args) {
  __facade_middleware__.push(...args.flat());
}
__name(__facade_register__, "__facade_register__");
function __facade_invokeChain__(request, env, ctx, dispatch, middlewareChain) {
  const [head, ...tail] = middlewareChain;
  const middlewareCtx = {
    dispatch,
    next(newRequest, newEnv) {
      return __facade_invokeChain__(newRequest, newEnv, ctx, dispatch, tail);
    }
  };
  return head(request, env, ctx, middlewareCtx);
}
__name(__facade_invokeChain__, "__facade_invokeChain__");
function __facade_invoke__(request, env, ctx, dispatch, finalMiddleware) {
  return __facade_invokeChain__(request, env, ctx, dispatch, [
    ...__facade_middleware__,
    finalMiddleware
  ]);
}
__name(__facade_invoke__, "__facade_invoke__");

// .wrangler/tmp/bundle-fDoeKp/middleware-loader.entry.ts
var __Facade_ScheduledController__ = class ___Facade_ScheduledController__ {
  constructor(scheduledTime, cron, noRetry) {
    this.scheduledTime = scheduledTime;
    this.cron = cron;
    this.#noRetry = noRetry;
  }
  scheduledTime;
  cron;
  static {
    __name(this, "__Facade_ScheduledController__");
  }
  #noRetry;
  noRetry() {
    if (!(this instanceof ___Facade_ScheduledController__)) {
      throw new TypeError("Illegal invocation");
    }
    this.#noRetry();
  }
};
function wrapExportedHandler(worker) {
  if (__INTERNAL_WRANGLER_MIDDLEWARE__ === void 0 || __INTERNAL_WRANGLER_MIDDLEWARE__.length === 0) {
    return worker;
  }
  for (const middleware of __INTERNAL_WRANGLER_MIDDLEWARE__) {
    __facade_register__(middleware);
  }
  const fetchDispatcher = /* @__PURE__ */ __name(function(request, env, ctx) {
    if (worker.fetch === void 0) {
      throw new Error("Handler does not export a fetch() function.");
    }
    return worker.fetch(request, env, ctx);
  }, "fetchDispatcher");
  return {
    ...worker,
    fetch(request, env, ctx) {
      const dispatcher = /* @__PURE__ */ __name(function(type, init) {
        if (type === "scheduled" && worker.scheduled !== void 0) {
          const controller = new __Facade_ScheduledController__(
            Date.now(),
            init.cron ?? "",
            () => {
            }
          );
          return worker.scheduled(controller, env, ctx);
        }
      }, "dispatcher");
      return __facade_invoke__(request, env, ctx, dispatcher, fetchDispatcher);
    }
  };
}
__name(wrapExportedHandler, "wrapExportedHandler");
function wrapWorkerEntrypoint(klass) {
  if (__INTERNAL_WRANGLER_MIDDLEWARE__ === void 0 || __INTERNAL_WRANGLER_MIDDLEWARE__.length === 0) {
    return klass;
  }
  for (const middleware of __INTERNAL_WRANGLER_MIDDLEWARE__) {
    __facade_register__(middleware);
  }
  return class extends klass {
    #fetchDispatcher = /* @__PURE__ */ __name((request, env, ctx) => {
      this.env = env;
      this.ctx = ctx;
      if (super.fetch === void 0) {
        throw new Error("Entrypoint class does not define a fetch() function.");
      }
      return super.fetch(request);
    }, "#fetchDispatcher");
    #dispatcher = /* @__PURE__ */ __name((type, init) => {
      if (type === "scheduled" && super.scheduled !== void 0) {
        const controller = new __Facade_ScheduledController__(
          Date.now(),
          init.cron ?? "",
          () => {
          }
        );
        return super.scheduled(controller);
      }
    }, "#dispatcher");
    fetch(request) {
      return __facade_invoke__(
        request,
        this.env,
        this.ctx,
        this.#dispatcher,
        this.#fetchDispatcher
      );
    }
  };
}
__name(wrapWorkerEntrypoint, "wrapWorkerEntrypoint");
var WRAPPED_ENTRY;
if (typeof middleware_insertion_facade_default === "object") {
  WRAPPED_ENTRY = wrapExportedHandler(middleware_insertion_facade_default);
} else if (typeof middleware_insertion_facade_default === "function") {
  WRAPPED_ENTRY = wrapWorkerEntrypoint(middleware_insertion_facade_default);
}
var middleware_loader_entry_default = WRAPPED_ENTRY;
export {
  xt as ContainerStartupOptions,
  Et as MinifyConfig,
  Ft as R2Range,
  __INTERNAL_WRANGLER_MIDDLEWARE__,
  middleware_loader_entry_default as default
};
//# sourceMappingURL=index.js.map
