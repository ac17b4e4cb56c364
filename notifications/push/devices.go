package push

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mtmapp/mtm/backend/store"
)

// DeleteDevice removes a device whose token FCM called unregistered or
// invalid, from the patient's record or (ownerIsAccount) the caregiver's
// account — only while the device still holds that token, so a token the
// app has since refreshed is kept. A missing owner is not an error.
func DeleteDevice(ctx context.Context, st store.Store, ownerIsAccount bool, ownerID, deviceID, token string) error {
	drop := func(devs []store.Device) []store.Device {
		return slices.DeleteFunc(devs, func(dv store.Device) bool { return dv.ID == deviceID && dv.FCMToken == token })
	}
	var err error
	if ownerIsAccount {
		_, err = st.UpdateAccount(ctx, ownerID, func(a store.Account) (store.Account, error) {
			a.Devices = drop(a.Devices)
			return a, nil
		})
	} else {
		_, err = st.UpdatePatient(ctx, ownerID, func(p store.Patient) (store.Patient, error) {
			p.Devices = drop(p.Devices)
			return p, nil
		})
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// SendAndPrune sends msgs (an immediate, non-durable push: a reply notice,
// a silent refresh) and deletes the devices whose token FCM answered is
// dead (see DeleteDevice); ownerIsAccount says which owners are caregiver
// accounts rather than the patient. Other failures are returned, joined,
// one per device; nothing is retried.
func SendAndPrune(ctx context.Context, sender Sender, st store.Store, msgs []Message, ownerIsAccount func(ownerID string) bool) error {
	if len(msgs) == 0 {
		return nil
	}
	var errs []error
	for i, res := range sender.Send(ctx, msgs) {
		m := msgs[i]
		switch res.Outcome {
		case Sent:
		case InvalidToken:
			if err := DeleteDevice(ctx, st, ownerIsAccount(m.OwnerID), m.OwnerID, m.DeviceID, m.Token); err != nil {
				errs = append(errs, err)
			}
		default:
			errs = append(errs, fmt.Errorf("device %s: %s: %w", m.DeviceID, res.Outcome, res.Err))
		}
	}
	return errors.Join(errs...)
}
