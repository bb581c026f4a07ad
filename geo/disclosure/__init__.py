"""Administrative sanctions against centres, the public disclosure of violations (위반사실 공표, 영유아보육법
§49-3) and the centres' evaluation grades (평가제); see docs/disclosure.md."""
